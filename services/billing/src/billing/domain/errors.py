"""Domain errors: bad input the edge should park (DLQ) or answer 4xx with."""


class BillingError(ValueError):
    """Input the billing rules cannot price or decide on."""


class PricingError(BillingError):
    """The agreed terms and the completed work do not fit together."""


class RulesError(BillingError):
    """A rules file is missing or malformed."""
