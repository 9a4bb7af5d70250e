//! A unit's tariff, set by the commune's agent and read by anyone: brackets
//! by quotient familial, reductions for brothers and sisters, absences and
//! unexpected presences; checked at the boundary, another commune's refused.

use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

const SET_TARIFF: &str = "mutation($input: SetTariffInput!) {
  setTariff(input: $input) {
    tariffs { id unitId validFrom validUntil brackets { upTo priceCents } siblingReductions
              unjustifiedAbsencePercent unexpectedPresencePenaltyCents }
  }
}";

#[tokio::test]
async fn an_agent_sets_a_units_tariff_by_bracket_and_a_stranger_cannot() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let id = Uuid::new_v4();
    let input = |unit: Uuid, brackets: serde_json::Value| {
        json!({ "input": {
            "collectivityId": fixture.collectivity, "id": id, "unitId": unit,
            "validFrom": "2026-09-01", "validUntil": "2027-08-31",
            "brackets": brackets, "siblingReductions": [10, 25],
            "unjustifiedAbsencePercent": 50, "unexpectedPresencePenaltyCents": 200
        } })
    };
    let brackets = json!([
        { "upTo": 400, "priceCents": 105 }, { "upTo": 700, "priceCents": 215 },
        { "upTo": 1000, "priceCents": 333 }, { "upTo": 1500, "priceCents": 410 },
        { "upTo": null, "priceCents": 485 }
    ]);
    let set = app
        .gql(
            Some(&fixture.agent()),
            SET_TARIFF,
            input(fixture.meal, brackets.clone()),
        )
        .await;
    let tariffs = &set.data("setTariff")["tariffs"];
    assert_eq!(tariffs.as_array().unwrap().len(), 1);
    assert_eq!(tariffs[0]["brackets"], brackets);
    assert_eq!(tariffs[0]["unjustifiedAbsencePercent"], 50);
    // Anyone reads it, as the commune publishes it.
    let public = app
        .gql(
            None,
            "query($c: UUID!) { collectivity(id: $c) { tariffs { id brackets { upTo priceCents } } } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(public.data("collectivity")["tariffs"][0]["id"], json!(id));

    // Bounds that do not rise, a bounded last bracket, a negative price.
    for broken in [
        json!([{ "upTo": 700, "priceCents": 215 }, { "upTo": 400, "priceCents": 105 }, { "upTo": null, "priceCents": 485 }]),
        json!([{ "upTo": 400, "priceCents": 105 }]),
        json!([{ "upTo": null, "priceCents": -5 }]),
        json!([]),
    ] {
        let refused = app
            .gql(
                Some(&fixture.agent()),
                SET_TARIFF,
                input(fixture.meal, broken.clone()),
            )
            .await;
        assert_eq!(refused.error_code(), "VALIDATION", "{broken}");
    }
    // Another commune's unit, or agent.
    let other = setup_commune(&app, &days).await;
    let foreign = app
        .gql(
            Some(&fixture.agent()),
            SET_TARIFF,
            input(other.meal, brackets.clone()),
        )
        .await;
    assert_eq!(foreign.error_code(), "NOT_FOUND");
    let stranger = app
        .gql(
            Some(&other.agent()),
            SET_TARIFF,
            input(fixture.meal, brackets.clone()),
        )
        .await;
    assert_eq!(stranger.error_code(), "FORBIDDEN");
    let parent = app
        .gql(Some(&fixture.parent()), SET_TARIFF, input(fixture.meal, brackets))
        .await;
    assert_eq!(parent.error_code(), "FORBIDDEN");
}
