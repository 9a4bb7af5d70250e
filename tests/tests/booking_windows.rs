//! Booking that opens at an instant, residents first: before it, a day
//! says when it opens; at it, the same basket goes through.

use chrono::{Duration, Utc};
use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

const WINDOW: &str = "mutation($input: SetBookingWindowInput!) {
  setBookingWindow(input: $input) { bookingWindows { id unitId first last opensAt residentsOpenAt } }
}";

const RESIDENCE: &str = "mutation($f: UUID!, $c: UUID!, $r: Boolean!) {
  setResidence(familyId: $f, collectivityId: $c, resident: $r) { residences }
}";

#[tokio::test]
async fn booking_opens_at_its_instant_and_earlier_for_residents() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let agent = fixture.agent();
    // Opens in three seconds; residents were let in a minute ago.
    let opens_at = (Utc::now() + Duration::seconds(3)).with_nanosecond_zeroed();
    let window = |residents: chrono::DateTime<Utc>| {
        json!({ "input": {
            "collectivityId": fixture.collectivity, "id": Uuid::from_u128(0x3d), "unitId": fixture.meal,
            "first": days[0], "last": days[1], "opensAt": opens_at, "residentsOpenAt": residents
        } })
    };
    let set = app
        .gql(Some(&agent), WINDOW, window(Utc::now() - Duration::minutes(1)))
        .await;
    assert_eq!(
        set.data("setBookingWindow")["bookingWindows"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Not a resident: refused, saying when, in the basket and the calendar.
    let early = app.book(&fixture, &days[..1]).await;
    let line = &early.data("submitBasket")["lines"][0];
    assert_eq!(line["refusal"]["code"], "BOOKING_NOT_OPEN", "{line}");
    let said = chrono::DateTime::parse_from_rfc3339(line["refusal"]["opensAt"].as_str().unwrap()).unwrap();
    assert_eq!(said, opens_at, "{line}");
    let day = app.calendar(&fixture, days[0], days[0]).await;
    assert_eq!(day.data("calendar")[0]["bookRefusal"]["code"], "BOOKING_NOT_OPEN");
    let opens = app
        .gql(
            Some(&fixture.parent()),
            "query($k: UUID!, $u: UUID!, $d: NaiveDate!) {
               calendar(childId: $k, unitId: $u, from: $d, to: $d) { bookRefusal { code message opensAt } }
             }",
            json!({ "k": fixture.child, "u": fixture.meal, "d": days[0] }),
        )
        .await;
    let refusal = &opens.data("calendar")[0]["bookRefusal"];
    let shown = chrono::DateTime::parse_from_rfc3339(refusal["opensAt"].as_str().unwrap()).unwrap();
    assert_eq!(shown, opens_at, "{refusal}");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .starts_with("les réservations ouvrent le "),
        "{refusal}"
    );

    // Recorded as a resident: let in already.
    let resident = app
        .gql(
            Some(&agent),
            RESIDENCE,
            json!({ "f": fixture.family, "c": fixture.collectivity, "r": true }),
        )
        .await;
    assert_eq!(
        resident.data("setResidence")["residences"],
        json!([fixture.collectivity])
    );
    let booked = app.book(&fixture, &days[..1]).await;
    assert_eq!(booked.data("submitBasket")["status"], "ACCEPTED");

    // No longer a resident: the second day waits for the opening, then goes.
    app.gql(
        Some(&agent),
        RESIDENCE,
        json!({ "f": fixture.family, "c": fixture.collectivity, "r": false }),
    )
    .await
    .data("setResidence");
    let waiting = app.book(&fixture, &days[1..]).await;
    assert_eq!(
        waiting.data("submitBasket")["lines"][0]["refusal"]["code"],
        "BOOKING_NOT_OPEN"
    );
    let wait = (opens_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_millis(200)).await;
    let opened = app.book(&fixture, &days[1..]).await;
    assert_eq!(opened.data("submitBasket")["status"], "ACCEPTED");

    // Residents later than everyone: refused; another commune's agent, or
    // its unit: refused, nothing written.
    let later = app
        .gql(Some(&agent), WINDOW, window(opens_at + Duration::hours(1)))
        .await;
    assert_eq!(later.error_code(), "VALIDATION");
    let other = setup_commune(&app, &days).await;
    let stranger = app.gql(Some(&other.agent()), WINDOW, window(Utc::now())).await;
    assert_eq!(stranger.error_code(), "FORBIDDEN");
    let foreign_unit = app
        .gql(
            Some(&agent),
            WINDOW,
            json!({ "input": {
                "collectivityId": fixture.collectivity, "unitId": other.meal,
                "first": days[0], "last": days[1], "opensAt": opens_at
            } }),
        )
        .await;
    assert_eq!(foreign_unit.error_code(), "NOT_FOUND");
    let residence_elsewhere = app
        .gql(
            Some(&other.agent()),
            RESIDENCE,
            json!({ "f": fixture.family, "c": other.collectivity, "r": true }),
        )
        .await;
    assert_eq!(residence_elsewhere.error_code(), "NOT_FOUND");
    app.stop().await;
}

trait Seconds {
    fn with_nanosecond_zeroed(self) -> Self;
}

impl Seconds for chrono::DateTime<Utc> {
    fn with_nanosecond_zeroed(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap_or(self)
    }
}
