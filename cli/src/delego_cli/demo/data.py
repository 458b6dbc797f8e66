"""The seed's cast: providers from Bangalore to Montréal, clients in Paris and Brussels.

Drawn from the 2012 article (`../shared/seed/`): a virtual assistant in India
billed by the hour, blog moderation from Manila by the unit, a Paris dating
assistant selling 6 guaranteed dates (40 h) for 650 EUR, a home tutor in Lyon
declared "services à la personne", a Montréal concierge by the month.
"""

from __future__ import annotations

from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def _week(start: str, end: str, days: tuple[str, ...] = WEEKDAYS) -> list[dict[str, str]]:
    return [{"day": d, "start": start, "end": end} for d in days]


def _eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


PROVIDERS: list[dict[str, Any]] = [
    {
        "id": "prv-priya-bangalore",
        "city": "Bangalore",
        "profile": {
            "display_name": "Priya R. — virtual assistant",
            "country": "IN",
            "languages": ["en", "fr", "hi"],
            "time_zone": "Asia/Kolkata",
            "schedule": _week("09:00", "18:00"),
            "weekly_capacity_hours": "40",
            "skills": [
                {"code": "translation.en-fr", "level": 4},
                {"code": "virtual_assistance.agenda", "level": 5},
                {"code": "virtual_assistance.bookings", "level": 4},
            ],
        },
        "offers": [
            {
                "title": "English → French translation, delivered by your next morning",
                "category": "translation",
                "skills": [{"code": "translation.en-fr", "level": 4}],
                "languages": ["en", "fr"],
                "delivery_mode": "remote",
                "typical_effort_hours": "2",
                "currency": "EUR",
                "pricing": {
                    "model": "hourly",
                    "rate": _eur("15.00"),
                    "minimum_minutes": 60,
                    "increment_minutes": 15,
                },
            },
            {
                "title": "Virtual assistant: agenda, bookings, e-mail triage",
                "category": "virtual_assistance",
                "skills": [{"code": "virtual_assistance.agenda", "level": 5}],
                "languages": ["en", "fr"],
                "delivery_mode": "remote",
                "typical_effort_hours": "1",
                "currency": "EUR",
                "pricing": {
                    "model": "hourly",
                    "rate": _eur("12.00"),
                    "minimum_minutes": 30,
                    "increment_minutes": 15,
                },
            },
        ],
    },
    {
        "id": "prv-paolo-manila",
        "city": "Manila",
        "profile": {
            "display_name": "Paolo D. — blog moderation",
            "country": "PH",
            "languages": ["en", "fr"],
            "time_zone": "Asia/Manila",
            "schedule": _week("08:00", "17:00", (*WEEKDAYS, "sat")),
            "weekly_capacity_hours": "45",
            "skills": [{"code": "blog_moderation.comments", "level": 4}],
        },
        "offers": [
            {
                "title": "Blog comment moderation, per batch of 100 comments",
                "category": "blog_moderation",
                "skills": [{"code": "blog_moderation.comments", "level": 4}],
                "languages": ["en", "fr"],
                "delivery_mode": "remote",
                "typical_effort_hours": "1",
                "currency": "EUR",
                "pricing": {
                    "model": "per_unit",
                    "unit_name": "batch of 100 comments",
                    "unit_price": _eur("12.00"),
                },
            }
        ],
    },
    {
        "id": "prv-claire-paris",
        "city": "Paris",
        "profile": {
            "display_name": "Claire M. — dating assistant",
            "country": "FR",
            "languages": ["fr", "en"],
            "time_zone": "Europe/Paris",
            "schedule": _week("10:00", "19:00"),
            "weekly_capacity_hours": "35",
            "skills": [
                {"code": "dating_assistance.profile_writing", "level": 5},
                {"code": "dating_assistance.message_drafting", "level": 5},
            ],
        },
        "offers": [
            {
                "title": "6 guaranteed dates: profile, messages, coaching (40 h)",
                "category": "dating_assistance",
                "skills": [{"code": "dating_assistance.profile_writing", "level": 5}],
                "languages": ["fr"],
                "delivery_mode": "remote",
                "typical_effort_hours": "40",
                "currency": "EUR",
                "pricing": {
                    "model": "package",
                    "price": _eur("650.00"),
                    "hours_included": "40",
                    "label": "6 guaranteed dates (40 h)",
                },
            }
        ],
    },
    {
        "id": "prv-julien-lyon",
        "city": "Lyon",
        "profile": {
            "display_name": "Julien B. — maths tutor",
            "country": "FR",
            "languages": ["fr"],
            "time_zone": "Europe/Paris",
            "schedule": [
                *_week("16:30", "20:00"),
                {"day": "sat", "start": "09:00", "end": "13:00"},
            ],
            "weekly_capacity_hours": "20",
            "skills": [{"code": "tutoring.maths", "level": 5}],
            "sap_declaration": {"number": "SAP823456789", "declared_on": "2019-09-02"},
        },
        "offers": [
            {
                "title": "Maths tutoring at your home (collège, lycée)",
                "category": "tutoring",
                "skills": [{"code": "tutoring.maths", "level": 5}],
                "languages": ["fr"],
                "delivery_mode": "at_home",
                "sap_activity": "soutien_scolaire_domicile",
                "typical_effort_hours": "2",
                "currency": "EUR",
                "pricing": {
                    "model": "hourly",
                    "rate": _eur("30.00"),
                    "minimum_minutes": 60,
                    "increment_minutes": 30,
                },
            }
        ],
    },
    {
        "id": "prv-sophie-montreal",
        "city": "Montréal",
        "profile": {
            "display_name": "Sophie T. — online concierge",
            "country": "CA",
            "languages": ["fr", "en"],
            "time_zone": "America/Toronto",
            "schedule": _week("08:00", "16:00"),
            "weekly_capacity_hours": "35",
            "skills": [{"code": "concierge.reservations", "level": 4}],
        },
        "offers": [
            {
                "title": "Monthly concierge: reservations, errands by phone, reminders",
                "category": "concierge",
                "skills": [{"code": "concierge.reservations", "level": 4}],
                "languages": ["fr", "en"],
                "delivery_mode": "remote",
                "typical_effort_hours": "3",
                "currency": "EUR",
                "pricing": {
                    "model": "subscription",
                    "price_per_period": _eur("39.00"),
                    "period": "month",
                    "included_hours": "3",
                    "overage_rate": _eur("15.00"),
                },
            }
        ],
    },
]

CLIENTS: list[dict[str, Any]] = [
    {
        "id": "cli-camille-paris",
        "city": "Paris",
        "contact": {
            "email": "camille@example.fr",
            "locale": "fr",
            "zone": "Europe/Paris",
            "channels": ["email", "inapp"],
        },
        "tax_profile": {"residence_country": "FR", "dependents": 1, "avance_immediate": True},
    },
    {
        "id": "cli-lucas-brussels",
        "city": "Brussels",
        "contact": {
            "email": "lucas@example.be",
            "locale": "fr",
            "zone": "Europe/Brussels",
            "channels": ["email", "inapp"],
        },
        "tax_profile": {"residence_country": "BE"},
    },
]

PROVIDER_CONTACTS: dict[str, dict[str, Any]] = {
    p["id"]: {
        "email": f"{p['id'].split('-')[1]}@providers.example.org",
        "locale": "en",
        "zone": p["profile"]["time_zone"],
        "channels": ["email", "inapp"],
    }
    for p in PROVIDERS
}

# The stories, in order. `work` is what the provider reports on completion
# (None: the price is billed at acceptance and the story stops there).
REQUESTS: list[dict[str, Any]] = [
    {
        "title": "Translation ordered at 18:30 in Paris, ready before 09:00",
        "client": "cli-camille-paris",
        "expect_provider": "prv-priya-bangalore",
        "body": {
            "category": "translation",
            "required_skills": [{"code": "translation.en-fr", "level": 4}],
            "languages": ["fr"],
            "effort_hours": "2",
            "client_zone": "Europe/Paris",
            "deadline": {"kind": "next_working_day", "start": "09:00"},
            "budget": _eur("60.00"),
            "delegation_level": "autonomous",
            "description": "Contract annex for my landlord — private",
        },
        "work": {"actual_minutes": 105},  # 1 h 45, reported exactly
        "rating": 5,
    },
    {
        "title": "Online dating help: the 40 h package",
        "client": "cli-camille-paris",
        "expect_provider": "prv-claire-paris",
        "body": {
            "category": "dating_assistance",
            "required_skills": [{"code": "dating_assistance.profile_writing", "level": 4}],
            "languages": ["fr"],
            "effort_hours": "40",
            "client_zone": "Europe/Paris",
            "deadline": "+42d",
            "budget": _eur("700.00"),
            "delegation_level": "act_with_review",
            "description": "I am shy; please keep my real name out of the profile",
        },
        "work": None,
        "rating": None,
    },
    {
        "title": "Maths tutoring at home (services à la personne)",
        "client": "cli-camille-paris",
        "expect_provider": "prv-julien-lyon",
        "body": {
            "category": "tutoring",
            "required_skills": [{"code": "tutoring.maths", "level": 4}],
            "languages": ["fr"],
            "effort_hours": "2",
            "client_zone": "Europe/Paris",
            "deadline": "+7d",
            "budget": _eur("80.00"),
            "delegation_level": "advice_only",
            "description": "Léa, 4e, fractions and equations",
        },
        "work": {"actual_hours": "2"},
        "rating": 5,
    },
    {
        "title": "Blog moderation from Manila, per batch",
        "client": "cli-lucas-brussels",
        "expect_provider": "prv-paolo-manila",
        "body": {
            "category": "blog_moderation",
            "required_skills": [{"code": "blog_moderation.comments", "level": 3}],
            "languages": ["fr"],
            "units": 3,
            "client_zone": "Europe/Brussels",
            "deadline": "+3d",
            "budget": _eur("50.00"),
            "delegation_level": "autonomous",
            "description": "",
        },
        "work": {"units": 3},
        "rating": 4,
    },
    {
        "title": "Monthly concierge from Montréal",
        "client": "cli-lucas-brussels",
        "expect_provider": "prv-sophie-montreal",
        "body": {
            "category": "concierge",
            "required_skills": [{"code": "concierge.reservations", "level": 3}],
            "languages": ["fr"],
            "effort_hours": "3",
            "client_zone": "Europe/Brussels",
            "deadline": "+30d",
            "budget": _eur("45.00"),
            "delegation_level": "act_with_review",
            "description": "",
        },
        "work": None,
        "rating": None,
    },
]

WEBHOOK_EVENT_TYPES = ["delego.billing.*", "delego.matching.MatchAccepted.v1"]
WEBHOOK_SECRET = "demo-webhook-secret-0123456789abcdef"
OPERATOR = "op-demo"
# The story's clock: Tuesday 1 December 2026, 18:30 in Paris.
STORY_START = "2026-12-01T17:30:00Z"
