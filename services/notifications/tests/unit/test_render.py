import pytest
from jinja2 import DictLoader, TemplateNotFound
from notifications.domain import Renderer, default_rules

NNBSP, NBSP = "\u202f", "\xa0"
APOS = "\u2019"  # CLDR writes the typographic apostrophe in zone names
PARIS, KOLKATA, NEW_YORK = "Europe/Paris", "Asia/Kolkata", "America/New_York"

# (kind, locale, zone) -> fragments that must appear in the text body.
EXPECTED = {
    ("match_proposed", "fr", KOLKATA): [
        f"Prix estimé : 1{NNBSP}234,50{NBSP}€",
        f"Livraison promise : lundi 30 mars 2026, 11:30 (heure de l{APOS}Inde)",
        "Heures réservées dans votre planning : 2,5",
    ],
    ("match_proposed", "en", KOLKATA): [
        "Estimated price: €1,234.50",
        f"Promised delivery: Monday, March 30, 2026, 11:30{NNBSP}AM (India Standard Time)",
        "Hours reserved in your schedule: 2.5",
    ],
    ("match_accepted", "fr", PARIS): [
        f"Livraison promise : lundi 30 mars 2026, 08:00 (heure d{APOS}été d{APOS}Europe centrale)",
        f"Prix estimé : 1{NNBSP}234,50{NBSP}€",
    ],
    ("match_accepted", "en", PARIS): [
        f"Promised delivery: Monday, March 30, 2026, 8:00{NNBSP}AM (Central European Summer Time)",
        "Estimated price: €1,234.50",
    ],
    ("request_unmatched", "fr", PARIS): [
        "Nous avons examiné 7 offre(s) en 2 tentative(s)",
        "- compétences insuffisantes (5 offre(s))",
        "- au-delà de votre budget (2 offre(s))",
    ],
    ("request_unmatched", "en", PARIS): [
        "We looked at 7 offer(s) over 2 attempt(s)",
        "- 5 lack skill translation.en-fr ≥ 4 (5 offer(s))",
    ],
    ("request_cancelled", "fr", NEW_YORK): [
        f"le mardi 14 juillet 2026, 06:00 (heure d{APOS}été de l{APOS}Est nord-américain)",
    ],
    ("request_cancelled", "en", NEW_YORK): [
        f"on Tuesday, July 14, 2026, 6:00{NNBSP}AM (Eastern Daylight Time)",
    ],
    ("work_completed", "fr", PARIS): [
        f"le lundi 30 mars 2026, 07:30 (heure d{APOS}été d{APOS}Europe centrale)",
        "Heures travaillées : 2,5",
        "https://app.delego.example/requests/req_1/rate",
    ],
    ("work_completed", "en", PARIS): [
        f"on Monday, March 30, 2026, 7:30{NNBSP}AM (Central European Summer Time)",
        "Hours worked: 2.5",
        "https://app.delego.example/requests/req_1/rate",
    ],
    ("invoice_issued", "fr", PARIS): [
        "émise le 1 janvier 2027",  # 23:30 UTC on 31 Dec is already 2027 in Paris
        f"Total TTC : 1{NNBSP}234,50{NBSP}€",
        f"TVA : 205,75{NBSP}€",
        "(Service rendu à distance : non éligible)",
    ],
    ("invoice_issued", "en", NEW_YORK): [
        "issued on December 31, 2026",  # ...and still 2026 in New York
        "Total including VAT: €1,234.50",
        "(Remote service: not eligible)",
    ],
    ("credit_note_issued", "fr", PARIS): [
        "sur la facture DLG-2026-000123",
        f"Montant crédité : 1{NNBSP}234,50{NBSP}€",
        f"Crédit d'impôt annulé : 0,00{NBSP}€",
    ],
    ("credit_note_issued", "en", PARIS): [
        "for invoice DLG-2026-000123",
        "Amount credited: €1,234.50",
    ],
    ("tax_certificate_issued", "fr", PARIS): [
        "(émise le 15 janvier 2027)",
        f"Montant ouvrant droit au crédit d'impôt : 600,00{NBSP}€",
        f"Crédit d'impôt déjà avancé : 300,00{NBSP}€",
    ],
    ("tax_certificate_issued", "en", PARIS): [
        "(issued on January 15, 2027)",
        "Amount eligible for the tax credit: €600.00",
    ],
}

SUBJECTS = {
    ("invoice_issued", "fr"): f"Facture DLG-2026-000123 : 1{NNBSP}234,50{NBSP}€",
    ("invoice_issued", "en"): "Invoice DLG-2026-000123: €1,234.50",
    ("tax_certificate_issued", "fr"): "Votre attestation fiscale 2026 est disponible",
    ("tax_certificate_issued", "en"): "Your 2026 tax certificate is available",
}


def test_every_routed_kind_has_expectations_in_both_locales():
    covered = {(k, loc) for k, loc, _ in EXPECTED}
    assert covered == {(k, loc) for k in default_rules().kinds for loc in ("fr", "en")}


@pytest.mark.parametrize(("kind", "locale", "zone"), sorted(EXPECTED))
def test_render_every_kind_in_both_locales(events, kind, locale, zone):
    fallbacks: list[tuple[str, str, str]] = []
    r = Renderer(on_fallback=lambda *a: fallbacks.append(a)).render(
        kind, locale=locale, zone=zone, context={"event": getattr(events, kind)()}
    )
    assert (r.locale, r.fell_back, r.missing, fallbacks) == (locale, False, (), [])
    for fragment in EXPECTED[(kind, locale, zone)]:
        assert fragment in r.text
    assert r.subject
    assert "\n" not in r.subject
    assert r.html.startswith("<!doctype html>")
    assert f'<html lang="{locale}">' in r.html
    assert r.html_body in r.html
    if (kind, locale) in SUBJECTS:
        assert r.subject == SUBJECTS[(kind, locale)]


def test_money_in_html_matches_text(events):
    r = Renderer().render(
        "invoice_issued", locale="fr", zone=PARIS, context={"event": events.invoice_issued()}
    )
    assert f"<strong>1{NNBSP}234,50{NBSP}€</strong>" in r.html


def test_html_is_autoescaped_and_text_is_not(events):
    r = Renderer().render(
        "work_completed", locale="en", zone=PARIS, context={"event": events.work_completed()}
    )
    assert "Asha &lt;Translations&gt;" in r.html
    assert "<Translations>" not in r.html
    assert "Asha <Translations> completed" in r.text
    assert r.subject == "Work completed by Asha <Translations>: please rate it"


def test_regional_locale_uses_language_templates_and_regional_numbers(events):
    r = Renderer().render(
        "match_accepted",
        locale="fr-CH",
        zone="Europe/Zurich",
        context={"event": events.match_accepted()},
    )
    assert (r.locale, r.fell_back) == ("fr", False)
    assert f"Prix estimé : 1'234,50{NBSP}€" in r.text


def test_unsupported_language_falls_back_to_english_and_reports_it(events):
    seen: list[tuple[str, str, str]] = []
    r = Renderer(on_fallback=lambda *a: seen.append(a)).render(
        "match_accepted", locale="de", zone=PARIS, context={"event": events.match_accepted()}
    )
    assert (r.locale, r.fell_back) == ("en", True)
    assert r.missing == (
        "match_accepted/subject.txt",
        "match_accepted/body.txt",
        "match_accepted/body.html",
    )
    assert seen[0] == ("match_accepted/subject.txt", "de", "en")
    assert "Estimated price: €1,234.50" in r.text  # English text, English numbers


LAYOUT = {"layout.html.j2": '<html lang="{{ lang }}"><title>{{ title }}</title>{{ content }}'}


def test_missing_french_template_falls_back_to_english(events):
    loader = DictLoader(
        {
            **LAYOUT,
            "en/receipt/subject.txt.j2": "Paid {{ event.total_gross | money }}",
            "en/receipt/body.txt.j2": (
                "Total {{ event.total_gross | money }} on {{ event.issued_at | day }}"
            ),
            "en/receipt/body.html.j2": "<p>{{ event.total_gross | money }}</p>",
            "fr/receipt/subject.txt.j2": "Payé {{ event.total_gross | money }}",
        }
    )
    seen: list[tuple[str, str, str]] = []
    r = Renderer(loader, on_fallback=lambda *a: seen.append(a)).render(
        "receipt", locale="fr", zone=PARIS, context={"event": events.invoice_issued()}
    )
    assert r.subject == f"Payé 1{NNBSP}234,50{NBSP}€"  # present in French: used
    assert r.text == "Total €1,234.50 on January 1, 2027\n"  # missing: English
    assert r.fell_back is True
    assert r.missing == ("receipt/body.txt", "receipt/body.html")
    assert seen == [("receipt/body.txt", "fr", "en"), ("receipt/body.html", "fr", "en")]


def test_no_template_at_all_is_an_error():
    with pytest.raises(TemplateNotFound):
        Renderer(DictLoader(LAYOUT)).render("nothing", locale="fr", zone=PARIS, context={})


def test_subject_is_one_line_even_if_the_template_is_not():
    loader = DictLoader(
        {
            **LAYOUT,
            "en/x/subject.txt.j2": "a\r\nBcc: evil\n",
            "en/x/body.txt.j2": "b",
            "en/x/body.html.j2": "c",
        }
    )
    assert Renderer(loader).render("x", locale="en", zone=PARIS, context={}).subject == (
        "a Bcc: evil"
    )


@pytest.mark.parametrize(("kind", "locale"), [("../etc", "fr"), ("invoice_issued", "fr/../x")])
def test_kind_and_locale_cannot_escape_the_template_tree(kind, locale):
    with pytest.raises(ValueError, match="not a"):
        Renderer().render(kind, locale=locale, zone=PARIS, context={})
