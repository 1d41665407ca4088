"""Sales and, in later modules, the price index, model registry, valuations and feedback."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models.functions import Now

from opendata.models import STORAGE_SRID, Parcel


class PropertyType(models.TextChoices):
    HOUSE = "house", "house"
    APARTMENT = "apartment", "apartment"
    OTHER = "other", "other"


#: The facts of a sold property that the deed (or the notary) gives; the sales import, the demo, the
#: training data and the valuation facts all list them in this order.
SALE_FACTS = (
    "property_type",
    "living_area_m2",
    "land_area_m2",
    "rooms",
    "bedrooms",
    "year_built",
    "epc_kwh_m2",
)


class Sale(models.Model):
    """One sale from a deed, as delivered by a source (a notarial partner, the demo region, a file)."""

    source = models.CharField(max_length=50, help_text="Who delivered the sale (partner name, demo, dvf...).")
    external_id = models.CharField(max_length=64, help_text="The sale's id at the source; unique per source.")
    sale_date = models.DateField(help_text="Date of the deed.")
    price_eur = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(1)],
        help_text="Price in the deed, EUR.",
    )
    property_type = models.CharField(max_length=10, choices=PropertyType.choices, default=PropertyType.HOUSE)
    living_area_m2 = models.FloatField(null=True, blank=True, validators=[MinValueValidator(1)])
    land_area_m2 = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    rooms = models.PositiveSmallIntegerField(null=True, blank=True)
    bedrooms = models.PositiveSmallIntegerField(null=True, blank=True)
    year_built = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1000), MaxValueValidator(2100)]
    )
    epc_kwh_m2 = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="EPC primary energy, kWh/m² a year.",
    )
    point = models.PointField(srid=STORAGE_SRID, help_text="Location of the property.")
    parcel = models.ForeignKey(
        Parcel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sales",
        help_text="Parcel containing the point, where parcels are loaded.",
    )
    address = models.CharField(
        max_length=300, blank=True, help_text="Address as delivered; empty when unknown."
    )
    imported_at = models.DateTimeField(
        auto_now=True, db_default=Now(), help_text="When the row was last written."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="sale_source_external_id_unique"),
            models.CheckConstraint(condition=models.Q(price_eur__gt=0), name="sale_price_positive"),
        ]
        indexes = [models.Index(fields=["sale_date"]), models.Index(fields=["property_type", "sale_date"])]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id} {self.sale_date} EUR {self.price_eur}"


class PriceIndexVersion(models.Model):
    """A price index built from the sales themselves, stored whole so that any valuation can cite it."""

    created_at = models.DateTimeField(auto_now_add=True)
    method = models.CharField(
        max_length=200, help_text="How it was built, e.g. monthly hedonic time effects."
    )
    frequency = models.CharField(max_length=1, help_text="M monthly or Q quarterly.")
    vintage = models.DateField(help_text="Last period with sales in it; beyond it the index is held flat.")
    sales_count = models.PositiveIntegerField(help_text="Sales used to build it.")
    sales_checksum = models.CharField(max_length=64, help_text="SHA-256 of the sales snapshot used.")
    payload = models.JSONField(help_text="The index itself (PriceIndex.to_dict()).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"price index #{self.pk} ({self.frequency}, to {self.vintage:%Y-%m})"

    @property
    def label(self) -> str:
        return f"PI-{self.pk} {self.vintage:%Y-%m}"


class ModelStatus(models.TextChoices):
    TRAINING = "training", "training"
    CANDIDATE = "candidate", "candidate (trained, not yet judged)"
    ACTIVE = "active", "active"
    REJECTED = "rejected", "rejected by the gate"
    RETIRED = "retired", "retired (was active)"
    FAILED = "failed", "training failed"


class ModelVersion(models.Model):
    """A trained price model with its provenance; exactly one is active at a time."""

    version = models.CharField(max_length=40, unique=True, help_text="e.g. 2026.11.27-1")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=ModelStatus.choices, default=ModelStatus.TRAINING)
    activated_at = models.DateTimeField(null=True, blank=True)
    artifact_path = models.CharField(
        max_length=500, blank=True, help_text="LightGBM text file under MODEL_DIR."
    )
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    features = models.JSONField(default=list, help_text="Feature names in model order (from the registry).")
    params = models.JSONField(default=dict, help_text="LightGBM and interval parameters.")
    price_index = models.ForeignKey(
        PriceIndexVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="model_versions"
    )
    train_from = models.DateField(null=True, blank=True, help_text="First sale date in the training data.")
    train_to = models.DateField(null=True, blank=True, help_text="Last sale date in the training data.")
    train_count = models.PositiveIntegerField(default=0)
    train_checksum = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the training snapshot."
    )
    code_version = models.CharField(
        max_length=64, blank=True, help_text="git commit of the code that trained it."
    )
    library_versions = models.JSONField(default=dict, blank=True)
    interval_coverage = models.FloatField(default=0.8, help_text="Stated coverage of the price range.")
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Backtest figures on the most recent sales."
    )
    gate = models.JSONField(
        default=dict, blank=True, help_text="What the promotion gate compared and decided."
    )
    reference = models.JSONField(
        default=dict,
        blank=True,
        help_text="Distribution of each feature and of the predicted log price on the latest training "
        "sales, which model monitoring compares recent valuations with (empty for older versions).",
    )
    reason = models.TextField(blank=True, help_text="Why it was rejected or failed, for a person.")
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    progress_stage = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="one_active_model_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"


class ModelMonitoring(ModelVersion):
    """The admin's model monitoring page (drift, accuracy on new sales, feedback): no table of its own."""

    class Meta:
        proxy = True
        verbose_name = "model monitoring"
        verbose_name_plural = "model monitoring"


class Office(models.Model):
    """A notary office: its notaries see its own valuations and feedback only."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """The office a user works for (one each); a user without one is staff or a partner's system."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="membership")
    office = models.ForeignKey(Office, on_delete=models.PROTECT, related_name="members")

    def __str__(self) -> str:
        return f"{self.user} @ {self.office}"


class Partner(models.Model):
    """A partner system (notarial software, a bank, a public body) calling the REST API."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(
        max_length=50, unique=True, help_text="Short name; also the source of the sales it delivers."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=True, help_text="An inactive partner's keys are all refused.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiScope(models.TextChoices):
    VALUATE = "valuate", "valuate (valuations, addresses, feedback)"
    DELIVER_SALES = "deliver_sales", "deliver sales"


class ApiKey(models.Model):
    """One key of a partner: only its SHA-256 is stored (the key is shown once, when issued)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100, blank=True, help_text="What the key is for, e.g. 'production'.")
    prefix = models.CharField(
        max_length=12, unique=True, help_text="The key's first characters, to recognise it."
    )
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, help_text="Any of: valuate, deliver_sales.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.partner})"


class Channel(models.TextChoices):
    WEB = "web", "web app"
    API = "api", "API"
    BATCH = "batch", "API batch"
    CLI = "cli", "command line"


class Valuation(models.Model):
    """One valuation with its inputs and outputs, kept so that it can be shown again exactly as it was."""

    created_at = models.DateTimeField(auto_now_add=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="valuations"
    )
    office = models.ForeignKey(
        Office,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="valuations",
        help_text="The notary office it was made for (web app); its members alone may open it.",
    )
    partner = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="valuations",
        help_text="The partner system that asked for it (API); it alone may read it.",
    )
    query = models.CharField(
        max_length=300, blank=True, help_text="What was asked: address, CaPaKey or coordinates."
    )
    inputs = models.JSONField(default=dict, help_text="The request as given, facts from the notary included.")
    valuation_date = models.DateField()
    parcel = models.ForeignKey(
        Parcel, on_delete=models.SET_NULL, null=True, blank=True, related_name="valuations"
    )
    point = models.PointField(srid=STORAGE_SRID)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="valuations")
    price_eur = models.PositiveIntegerField(help_text="Indicative price, rounded to EUR 1,000.")
    low_eur = models.PositiveIntegerField(help_text="Lower end of the price range.")
    high_eur = models.PositiveIntegerField(help_text="Upper end of the price range.")
    coverage = models.FloatField(help_text="Stated coverage of the range, e.g. 0.8.")
    result = models.JSONField(
        help_text="Everything shown: features, contributions, distribution, comparables, vintages."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at"])]

    def __str__(self) -> str:
        return f"valuation #{self.pk}: EUR {self.price_eur:,} ({self.valuation_date})"


class Verdict(models.TextChoices):
    RIGHT = "right", "the price is right"
    TOO_HIGH = "too_high", "too high"
    TOO_LOW = "too_low", "too low"


class FeedbackStatus(models.TextChoices):
    NEW = "new", "new"
    IN_REVIEW = "in_review", "in review"
    ACCEPTED = "accepted", "accepted"
    REJECTED = "rejected", "rejected"


class Feedback(models.Model):
    """A notary's opinion of a valuation, kept with it for staff to review."""

    valuation = models.ForeignKey(Valuation, on_delete=models.CASCADE, related_name="feedback")
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, null=True, blank=True, related_name="feedback"
    )
    office = models.ForeignKey(
        Office, on_delete=models.PROTECT, null=True, blank=True, related_name="feedback"
    )
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    estimate_eur = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1_000), MaxValueValidator(100_000_000)],
        help_text="The notary's own estimate, if given.",
    )
    comment = models.TextField(blank=True, max_length=4000)
    status = models.CharField(max_length=10, choices=FeedbackStatus.choices, default=FeedbackStatus.NEW)
    staff_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "feedback"

    def __str__(self) -> str:
        return f"feedback #{self.pk} on valuation #{self.valuation_id}: {self.get_verdict_display()}"


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class BatchJob(models.Model):
    """A partner's batch of up to 10,000 valuations, valued by a worker; results per item."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="batches")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=BatchStatus.choices, default=BatchStatus.QUEUED)
    items = models.JSONField(help_text="The items as received (validated requests or their errors).")
    results = models.JSONField(default=list, help_text="Per item: the valuation id and price, or its error.")
    total = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"batch #{self.pk} of {self.partner} ({self.status}, {self.done}/{self.total})"
