"""The ML core of the valuation engine: plain Python (numpy, pandas, scipy, LightGBM), never Django.

Modules
-------
metrics
    Ratio-study statistics (MdAPE, PPE10/20, COD, PRD, PRB, median ratio, interval coverage).
price_index
    A hedonic price index built from the sales themselves, to index past prices to a reference date.
neighbourhood
    Leak-free neighbourhood features from earlier sales, one definition for training and serving.
model
    ``PriceModel``: LightGBM on log price, reproducible, saved with its provenance.
intervals
    ``ConformalInterval``: an interval with a stated coverage, calibrated on time-later sales.
explain
    SHAP contributions (TreeSHAP) converted to euros that add up exactly to the displayed price.
baseline
    The comparables baseline (median indexed price per m2 of the 20 nearest earlier sales), also a
    feature, with one definition for many targets and for one.
features
    ``DefaultFeatures``: the feature builder shared by training, backtests and serving.
backtest
    ``run_backtest``: train before a split date, value the sales after it, ratio-study both.

Heavy imports (LightGBM) happen in the modules that need them, so ``metrics`` stays cheap to import.
"""
