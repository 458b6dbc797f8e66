"""Search on the real store: right offers, right order, cursor paging without gaps or repeats."""

from __future__ import annotations

from typing import Any

import pytest
from catalog.domain import OfferQuery, search_offers
from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot

pytestmark = pytest.mark.integration


def eur(amount: str, currency: str = "EUR") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


async def build_market(catalog) -> dict[str, str]:
    """Three providers, offers in every pricing model, status and currency; returns name -> id."""
    await catalog.register("prv_asha")  # Asia/Kolkata; en, fr, hi
    await catalog.register(
        "prv_marie",
        display_name="Marie D.",
        country="BE",
        languages=["fr", "en"],
        time_zone="Europe/Brussels",
        skills=[
            {"code": "tutoring.maths", "level": 3},
            {"code": "translation.en-fr", "level": 5},
        ],
    )
    await catalog.register("prv_gone", time_zone="America/Montreal")
    tutoring = {"category": "tutoring", "typical_effort_hours": "2"}
    translation = {"category": "translation", "typical_effort_hours": "3"}
    ids: dict[str, str] = {}

    async def add(name: str, provider: str, publish: bool = True, **body: Any) -> None:
        offer = await catalog.draft(provider, **body)
        if publish:
            offer = await catalog.publish(provider, offer["offer_id"])
        ids[name] = offer["offer_id"]

    await add("dating_650", "prv_asha")  # package 650 EUR, en, remote
    await add(
        "maths_asha_20",
        "prv_asha",
        skills=[{"code": "tutoring.maths", "level": 5}],
        languages=["fr"],
        pricing=catalog.hourly("20"),
        **tutoring,
    )
    await add(
        "translation_12",
        "prv_asha",
        skills=[{"code": "translation.en-fr", "level": 4}],
        languages=["en", "fr"],
        pricing=catalog.hourly("12"),
        **translation,
    )
    await add(
        "maths_sub_30",
        "prv_marie",
        skills=[{"code": "tutoring.maths", "level": 3}],
        languages=["fr-BE"],
        delivery_mode="mixed",
        pricing={
            "model": "subscription",
            "price_per_period": eur("30"),
            "included_hours": "4",
        },
        **tutoring,
    )
    await add(
        "module_10",
        "prv_marie",
        skills=[{"code": "translation.en-fr", "level": 5}],
        languages=["fr"],
        pricing={"model": "per_unit", "unit_name": "page", "unit_price": eur("10")},
        **translation,
    )
    await add(
        "maths_marie_20",
        "prv_marie",
        skills=[{"code": "tutoring.maths", "level": 2}],
        languages=["fr"],
        delivery_mode="at_home",
        sap_activity="soutien_scolaire_domicile",
        pricing=catalog.hourly("20"),
        **tutoring,
    )
    await add(
        "usd_15",
        "prv_marie",
        skills=[{"code": "tutoring.maths", "level": 3}],
        languages=["en"],
        currency="USD",
        pricing=catalog.hourly("15", "USD"),
        **tutoring,
    )
    await add(
        "draft_5",
        "prv_marie",
        publish=False,
        skills=[{"code": "tutoring.maths", "level": 3}],
        languages=["fr"],
        pricing=catalog.hourly("5"),
        **tutoring,
    )
    await add("withdrawn_1", "prv_asha", pricing=catalog.hourly("1"), typical_effort_hours="2")
    r = await catalog.http.post(
        f"/offers/{ids['withdrawn_1']}/withdraw", headers=catalog.auth("prv_asha", "provider")
    )
    assert r.status_code == 200, r.text
    await add("suspended_2", "prv_gone", pricing=catalog.hourly("2"), typical_effort_hours="2")
    r = await catalog.http.post(
        "/providers/prv_gone/suspend", headers=catalog.auth("op_1", "operator")
    )
    assert r.status_code == 200, r.text
    return ids


async def search(catalog, **params: Any) -> list[str]:
    """Every result of a search, following the cursor with small pages."""
    out: list[str] = []
    cursor = None
    pages = 0
    while True:
        q = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await catalog.http.get("/offers", params=q, headers=catalog.auth("cli_1", "client"))
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        out += [o["offer_id"] for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(out) == len(set(out)), "an offer appeared on two pages"
    return out


async def test_search_returns_the_right_offers_in_order_with_cursor_paging(catalog):
    ids = await build_market(catalog)
    name = {v: k for k, v in ids.items()}

    async def names(**params: Any) -> list[str]:
        return [name[i] for i in await search(catalog, **params)]

    # no filter: published offers of active providers, by reference amount then id
    everything = await names()
    assert set(everything) == {
        "module_10",
        "translation_12",
        "usd_15",
        "maths_asha_20",
        "maths_marie_20",
        "maths_sub_30",
        "dating_650",
    }
    twenties = sorted(["maths_asha_20", "maths_marie_20"], key=lambda n: ids[n])
    assert everything == [
        "module_10",
        "translation_12",
        "usd_15",
        *twenties,
        "maths_sub_30",
        "dating_650",
    ]

    assert await names(category="tutoring") == ["usd_15", *twenties, "maths_sub_30"]
    assert await names(skill="tutoring.maths", min_level=3) == [
        "usd_15",
        "maths_asha_20",
        "maths_sub_30",
    ]
    assert await names(skill="tutoring.maths", min_level=5) == ["maths_asha_20"]
    # fr matches fr-BE; fr-BE matches fr-BE and plain fr, not en
    fr = await names(language="fr")
    assert set(fr) == {
        "module_10",
        "translation_12",
        "maths_asha_20",
        "maths_marie_20",
        "maths_sub_30",
    }
    assert set(await names(language="fr-BE")) == set(fr)
    assert set(await names(language="fr-CA")) == set(fr) - {"maths_sub_30"}
    assert await names(max_price="20", currency="EUR") == ["module_10", "translation_12", *twenties]
    assert await names(max_price="100", currency="USD") == ["usd_15"]
    assert await names(pricing_model="hourly") == ["translation_12", "usd_15", *twenties]
    assert await names(pricing_model="per_unit") == ["module_10"]
    assert await names(delivery_mode="mixed") == ["maths_sub_30"]
    assert await names(delivery_mode="at_home") == ["maths_marie_20"]
    assert await names(time_zone="Europe/Brussels") == [
        "module_10",
        "usd_15",
        "maths_marie_20",
        "maths_sub_30",
    ]
    assert await names(time_zone=["Asia/Kolkata", "America/Montreal"]) == [
        "translation_12",
        "maths_asha_20",
        "dating_650",
    ]
    # combined filters
    assert await names(
        category="tutoring",
        language="fr",
        max_price="25",
        currency="EUR",
        time_zone="Asia/Kolkata",
    ) == ["maths_asha_20"]
    assert await names(category="gaming") == []


async def test_the_store_agrees_with_the_pure_search_specification(catalog):
    """The Mongo query and `catalog.domain.search_offers` give the same pages."""
    ids = await build_market(catalog)
    op = catalog.auth("op_1", "operator")
    offers = []
    for oid in ids.values():
        r = await catalog.http.get(f"/offers/{oid}", headers=op)
        offers.append(OfferSnapshot.model_validate(r.json()["offer"]))
    providers = {}
    for pid in ("prv_asha", "prv_marie", "prv_gone"):
        r = await catalog.http.get(f"/providers/{pid}", headers=op)
        providers[pid] = ProviderSnapshot.model_validate(r.json()["provider"])
    queries = [
        {},
        {"category": "tutoring"},
        {"skill": "translation.en-fr", "min_level": 4},
        {"language": "en"},
        {"language": "fr-BE", "pricing_model": "hourly"},
        {"max_price": {"amount": "12", "currency": "EUR"}},
        {"delivery_mode": "remote", "time_zones": ["Asia/Kolkata"]},
    ]
    for q in queries:
        for limit in (1, 3, 20):
            query = OfferQuery.model_validate({**q, "limit": limit})
            expected = search_offers(offers, providers, query)
            got = await catalog.store.search(query)
            assert [o.offer_id for o in got.items] == [o.offer_id for o in expected.items], q
            assert got.next_cursor == expected.next_cursor, q
            if got.next_cursor:
                query2 = query.model_copy(update={"cursor": got.next_cursor})
                got2 = await catalog.store.search(query2)
                expected2 = search_offers(offers, providers, query2)
                assert [o.offer_id for o in got2.items] == [o.offer_id for o in expected2.items]


async def test_paging_survives_offers_added_between_pages(catalog):
    await catalog.register("prv_asha")
    first = [
        await catalog.published("prv_asha", pricing=catalog.hourly(p), typical_effort_hours="2")
        for p in ("10", "20", "30")
    ]
    client = catalog.auth("cli_1", "client")
    r = await catalog.http.get("/offers", params={"limit": 2}, headers=client)
    page1 = r.json()
    assert [o["offer_id"] for o in page1["items"]] == [o["offer_id"] for o in first[:2]]
    cheaper = await catalog.published(
        "prv_asha", pricing=catalog.hourly("5"), typical_effort_hours="2"
    )
    later = await catalog.published(
        "prv_asha", pricing=catalog.hourly("40"), typical_effort_hours="2"
    )
    r = await catalog.http.get(
        "/offers", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=client
    )
    page2 = r.json()
    # after the cursor: no repeat, nothing skipped; the cheaper newcomer sorts before it
    assert [o["offer_id"] for o in page2["items"]] == [first[2]["offer_id"], later["offer_id"]]
    assert cheaper["offer_id"] not in [o["offer_id"] for o in page2["items"]]
    assert page2["next_cursor"] is None
