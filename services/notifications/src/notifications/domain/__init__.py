"""Pure domain core of the notifications service: no I/O, no clock.

Routing (event -> planned deliveries), recipient directory and preferences,
quiet hours, digests, rendering, webhook signing, retry and failover
decisions, and the builders of the service's own events. Edges (Kafka,
Mongo, SMTP, HTTP) call into this package and pass `now` in.
"""

from .delivery_key import delivery_key, digest_key
from .digest import (
    DIGEST_KIND,
    HeldNotification,
    OutgoingMessage,
    digest_order,
    group_held,
    release_message,
)
from .endpoint_sets import SUBSCRIPTIONS, endpoints_of, set_entries, set_key
from .failover import (
    Decision,
    FailOver,
    Failure,
    GiveUp,
    RetryAt,
    after_failure,
    email_failure,
    next_delivery,
    webhook_failure,
)
from .outcome import delivered_event, failed_event
from .preferences import ALL_KINDS, CriticalKindLocked, Preferences
from .quiet_hours import QuietHours, in_quiet_hours, quiet_until
from .recipient import Recipient, WebhookEndpoint
from .render import Rendered, Renderer
from .retry import RetryPolicy, Rng
from .routing import (
    QUIET_CHANNELS,
    PlannedDelivery,
    RoutingRule,
    RoutingRules,
    default_rules,
    hold_until,
    parse_rules,
    plan_deliveries,
    usable_channels,
)
from .schedule import (
    DeliveryStatus,
    Drop,
    FinishFailover,
    Op,
    Repair,
    Reschedule,
    State,
    Wait,
    repair,
    retry_timer_delay,
)
from .signature import (
    MalformedSignatureHeader,
    SignatureError,
    SignatureMismatch,
    TimestampOutsideTolerance,
    compute_signature,
    signature_header,
    verify_signature,
    webhook_headers,
)
from .webhook import WebhookRequest, build_webhook_request, webhook_body

__all__ = [
    "ALL_KINDS",
    "DIGEST_KIND",
    "QUIET_CHANNELS",
    "SUBSCRIPTIONS",
    "CriticalKindLocked",
    "Decision",
    "DeliveryStatus",
    "Drop",
    "FailOver",
    "Failure",
    "FinishFailover",
    "GiveUp",
    "HeldNotification",
    "MalformedSignatureHeader",
    "Op",
    "OutgoingMessage",
    "PlannedDelivery",
    "Preferences",
    "QuietHours",
    "Recipient",
    "Rendered",
    "Renderer",
    "Repair",
    "Reschedule",
    "RetryAt",
    "RetryPolicy",
    "Rng",
    "RoutingRule",
    "RoutingRules",
    "SignatureError",
    "SignatureMismatch",
    "State",
    "TimestampOutsideTolerance",
    "Wait",
    "WebhookEndpoint",
    "WebhookRequest",
    "after_failure",
    "build_webhook_request",
    "compute_signature",
    "default_rules",
    "delivered_event",
    "delivery_key",
    "digest_key",
    "digest_order",
    "email_failure",
    "endpoints_of",
    "failed_event",
    "group_held",
    "hold_until",
    "in_quiet_hours",
    "next_delivery",
    "parse_rules",
    "plan_deliveries",
    "quiet_until",
    "release_message",
    "repair",
    "retry_timer_delay",
    "set_entries",
    "set_key",
    "signature_header",
    "usable_channels",
    "verify_signature",
    "webhook_body",
    "webhook_failure",
    "webhook_headers",
]
