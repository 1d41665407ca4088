"""Sales, price index, training, model registry, prediction, explanations, valuations, UI and API."""
