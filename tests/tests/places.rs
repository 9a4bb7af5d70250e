//! Places: a unit that takes so many children a day puts the next ones on
//! a waiting list, promotes the first when a place frees up (once, with an
//! e-mail), and never gives more places than it has, even to baskets
//! racing on two servers (checked from the events).

use std::time::Duration;

use chrono::NaiveDate;
use espace_famille_domain::places::{places_id, Places, PlacesEvent};
use espace_famille_domain::reservation::{reservation_id, Reservation, ReservationEvent};
use espace_famille_projections::store::{Position, RecordedEvent};
use espace_famille_tests::*;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

const SET_PLACES: &str = "mutation($c: UUID!, $u: UUID!, $p: Int) {
  setPlaces(collectivityId: $c, unitId: $u, places: $p) { units { id places placesOn { date places } } }
}";

const SET_DAY_PLACES: &str = "mutation($c: UUID!, $u: UUID!, $d: NaiveDate!, $p: Int) {
  setDayPlaces(collectivityId: $c, unitId: $u, date: $d, places: $p) { units { id places placesOn { date places } } }
}";

const BASKET: &str = "mutation($input: SubmitBasketInput!) {
  submitBasket(input: $input) { status lines { reservationId accepted waitingPosition refusal { code } } }
}";

const DAY: &str = "query($k: UUID!, $u: UUID!, $d: NaiveDate!) {
  calendar(childId: $k, unitId: $u, from: $d, to: $d) { status state waitingPosition label canCancel }
}";

/// Registers `count` more children in the fixture's family, enrolled in
/// its canteen for the year of `day`.
async fn more_children(app: &TestApp, fixture: &Fixture, day: NaiveDate, count: usize) -> Vec<Uuid> {
    let mut children = Vec::with_capacity(count);
    for n in 0..count {
        let child = Uuid::new_v4();
        app.gql(
            Some(&fixture.parent()),
            "mutation($f: UUID!, $k: UUID!, $n: String!) {
               registerChild(input: {
                 familyId: $f, id: $k, firstName: $n, lastName: \"Martin\", birthDate: \"2017-09-12\"
               }) { id }
             }",
            json!({ "f": fixture.family, "k": child, "n": format!("Enfant {n}") }),
        )
        .await
        .data("registerChild");
        for year in school_years(&[day]) {
            app.gql(
                Some(&fixture.agent()),
                "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!, $y: Int!) {
                   enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: $y }) { id }
                 }",
                json!({ "f": fixture.family, "k": child, "c": fixture.collectivity, "s": fixture.canteen, "y": year }),
            )
            .await
            .data("enrolChild");
        }
        children.push(child);
    }
    children
}

/// One child's booking of `day`, as a basket of its own; its line.
async fn book_child(app: &TestApp, fixture: &Fixture, child: Uuid, day: NaiveDate) -> Value {
    let outcome = app
        .gql(
            Some(&fixture.parent()),
            BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": [
                { "action": "BOOK", "childId": child, "unitId": fixture.meal, "date": day }
            ] } }),
        )
        .await;
    assert_eq!(
        outcome.data("submitBasket")["status"],
        "ACCEPTED",
        "{}",
        outcome.0
    );
    outcome.data("submitBasket")["lines"][0].clone()
}

async fn day_of(
    app: &TestApp,
    fixture: &Fixture,
    child: Uuid,
    day: NaiveDate,
    language: Option<&str>,
) -> Value {
    app.gql_in(
        language,
        Some(&fixture.parent()),
        DAY,
        json!({ "k": child, "u": fixture.meal, "d": day }),
    )
    .await
    .data("calendar")[0]
        .clone()
}

/// Waits (up to ten seconds) until `child`'s day has `status`.
async fn until_status(app: &TestApp, fixture: &Fixture, child: Uuid, day: NaiveDate, status: &str) -> Value {
    for _ in 0..100 {
        let shown = day_of(app, fixture, child, day, None).await;
        if shown["status"] == status {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{child} on {day} never became {status}");
}

/// The events of a day's places, in commit order.
async fn places_events(app: &TestApp, unit: Uuid, day: NaiveDate) -> Vec<(Position, PlacesEvent)> {
    let rows = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position, payload::text AS payload
         FROM events WHERE aggregate_type = 'Places' AND aggregate_id = $1
         ORDER BY transaction_id, global_position",
    )
    .bind(places_id(unit, day).to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            let position = Position {
                transaction_id: row.get("transaction_id"),
                global_position: row.get("global_position"),
            };
            (
                position,
                serde_json::from_str(row.get::<&str, _>("payload")).unwrap(),
            )
        })
        .collect()
}

/// The events of a reservation.
async fn reservation_events(app: &TestApp, id: Uuid) -> Vec<ReservationEvent> {
    let history =
        espace_famille_projections::store::stream_history(&app.pool, "Reservation", &id.to_string())
            .await
            .unwrap();
    history
        .iter()
        .map(|e: &RecordedEvent| e.decode::<Reservation>().unwrap())
        .collect()
}

#[tokio::test]
async fn a_full_day_waits_in_order_and_a_place_freed_goes_to_the_first_once() {
    let app = spawn_app().await;
    let day = future_canteen_days(1)[0];
    let fixture = setup_commune(&app, &[day]).await;
    let agent = fixture.agent();
    let set = app
        .gql(
            Some(&agent),
            SET_PLACES,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "p": 2 }),
        )
        .await;
    assert_eq!(set.data("setPlaces")["units"][0]["places"], 2);
    let mut children = vec![fixture.child];
    children.extend(more_children(&app, &fixture, day, 4).await);

    // Two places: the first two have one, the next two wait, in order.
    let mut lines = Vec::new();
    for &child in &children[..4] {
        lines.push(book_child(&app, &fixture, child, day).await);
    }
    assert_eq!(lines[0]["waitingPosition"], Value::Null);
    assert_eq!(lines[1]["waitingPosition"], Value::Null);
    assert_eq!(lines[2]["waitingPosition"], 1);
    assert_eq!(lines[3]["waitingPosition"], 2);
    let shown = day_of(&app, &fixture, children[3], day, None).await;
    assert_eq!(shown["state"], "WAIT_LISTED", "{shown}");
    assert_eq!(shown["waitingPosition"], 2);
    assert_eq!(shown["label"], "liste d'attente, 2e");
    let english = day_of(&app, &fixture, children[3], day, Some("en")).await;
    assert_eq!(english["label"], "waiting list, 2nd");
    let booked = day_of(&app, &fixture, children[0], day, None).await;
    assert_eq!(booked["label"], "réservé");
    // On the list already: refused, saying so.
    let again = app
        .gql(
            Some(&fixture.parent()),
            BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": [
                { "action": "BOOK", "childId": children[3], "unitId": fixture.meal, "date": day }
            ] } }),
        )
        .await;
    assert_eq!(
        again.data("submitBasket")["lines"][0]["refusal"]["code"],
        "ALREADY_WAIT_LISTED"
    );

    // The first booking's cancellation, once an agent approves it, gives
    // its place to the first waiting: promoted, and told by e-mail.
    let cancelled = app
        .request_cancellation(&fixture, &lines[0]["reservationId"])
        .await;
    assert_eq!(
        cancelled.data("requestCancellation")["status"],
        "CANCELLATION_REQUESTED"
    );
    let still = day_of(&app, &fixture, children[2], day, None).await;
    assert_eq!(
        still["waitingPosition"], 1,
        "a pending cancellation holds its place"
    );
    let approved = app
        .gql(
            Some(&agent),
            "mutation($r: UUID!) { approveCancellation(reservationId: $r) { status } }",
            json!({ "r": lines[0]["reservationId"] }),
        )
        .await;
    assert_eq!(approved.data("approveCancellation")["status"], "CANCELLED");
    let promoted = until_status(&app, &fixture, children[2], day, "CONFIRMED").await;
    assert_eq!(promoted["waitingPosition"], Value::Null);
    let moved_up = day_of(&app, &fixture, children[3], day, None).await;
    assert_eq!(moved_up["waitingPosition"], 1, "{moved_up}");
    // Two messages: the cancellation accepted, the place given.
    let mails = [
        app.next_mail_to(&fixture.guardian_email).await,
        app.next_mail_to(&fixture.guardian_email).await,
    ];
    assert!(mails.iter().any(|m| m.contains("est acceptée")), "{mails:?}");
    let mail = mails
        .iter()
        .find(|m| m.contains("Une place s'est libérée"))
        .unwrap_or_else(|| panic!("no promotion mail: {mails:?}"));
    assert!(mail.contains("Enfant 1"), "{mail}");

    // Leaving the list: only a booking that waits; the next one moves up.
    let confirmed = app
        .gql(
            Some(&fixture.parent()),
            "mutation($r: UUID!) { leaveWaitingList(reservationId: $r) { status } }",
            json!({ "r": lines[1]["reservationId"] }),
        )
        .await;
    assert_eq!(confirmed.error_code(), "NOT_WAIT_LISTED");
    let fourth = book_child(&app, &fixture, children[4], day).await;
    assert_eq!(fourth["waitingPosition"], 2);
    let left = app
        .gql(
            Some(&fixture.parent()),
            "mutation($r: UUID!) { leaveWaitingList(reservationId: $r) { status } }",
            json!({ "r": lines[3]["reservationId"] }),
        )
        .await;
    assert_eq!(left.data("leaveWaitingList")["status"], "CANCELLED");
    let mut position = Value::Null;
    for _ in 0..100 {
        position = day_of(&app, &fixture, children[4], day, None).await["waitingPosition"].clone();
        if position == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(position, 1, "the one behind moves up");

    // A third place that day (a trip's extra helper): the first waiting
    // takes it.
    let more = app
        .gql(
            Some(&agent),
            SET_DAY_PLACES,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "d": day, "p": 3 }),
        )
        .await;
    assert_eq!(
        more.data("setDayPlaces")["units"][0]["placesOn"],
        json!([{ "date": day, "places": 3 }])
    );
    until_status(&app, &fixture, children[4], day, "CONFIRMED").await;

    // From the events: never more holders than places, one promotion per
    // place freed or added, each reservation promoted once.
    let events = places_events(&app, fixture.meal, day).await;
    let mut places = Places::default();
    let mut promotions = Vec::new();
    for (_, event) in &events {
        if let PlacesEvent::Promoted { reservation_id, .. } = event {
            promotions.push(*reservation_id);
        }
        cqrs_es::Aggregate::apply(&mut places, event.clone());
        assert!(places.holders.len() <= 3, "{events:?}");
    }
    let second = reservation_id(children[2], fixture.meal, day);
    let fifth = reservation_id(children[4], fixture.meal, day);
    assert_eq!(promotions, vec![second, fifth], "{events:?}");
    assert!(places.waiting.is_empty());
    let promoted_events = reservation_events(&app, second).await;
    assert_eq!(
        promoted_events
            .iter()
            .filter(|e| **e == ReservationEvent::Promoted)
            .count(),
        1
    );

    // Another commune's agent, or a unit of another commune: refused.
    let other = setup_commune(&app, &[day]).await;
    let stranger = app
        .gql(
            Some(&other.agent()),
            SET_PLACES,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "p": 100 }),
        )
        .await;
    assert_eq!(stranger.error_code(), "FORBIDDEN");
    let foreign = app
        .gql(
            Some(&agent),
            SET_PLACES,
            json!({ "c": fixture.collectivity, "u": other.meal, "p": 100 }),
        )
        .await;
    assert_eq!(foreign.error_code(), "NOT_FOUND");
    let huge = app
        .gql(
            Some(&agent),
            SET_PLACES,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "p": 1_000_000 }),
        )
        .await;
    assert_eq!(huge.error_code(), "VALIDATION");
}

#[tokio::test]
async fn baskets_racing_on_two_servers_for_the_last_places_never_get_more_than_there_are() {
    let first = spawn_app().await;
    let second = spawn_beside(&first).await;
    let day = future_canteen_days(1)[0];
    let fixture = setup_commune(&first, &[day]).await;
    first
        .gql(
            Some(&fixture.agent()),
            SET_PLACES,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "p": 5 }),
        )
        .await
        .data("setPlaces");
    let mut children = vec![fixture.child];
    children.extend(more_children(&first, &fixture, day, 15).await);

    // Sixteen baskets at once, half through each server.
    let baskets = children.iter().enumerate().map(|(n, &child)| {
        let app = if n % 2 == 0 { &first } else { &second };
        book_child(app, &fixture, child, day)
    });
    let lines = futures::future::join_all(baskets).await;
    let mut positions: Vec<i64> = lines
        .iter()
        .filter_map(|l| l["waitingPosition"].as_i64())
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=11).collect::<Vec<_>>(), "{lines:?}");

    // From the events, in commit order: five places taken, never more,
    // and the tickets given in the order their baskets committed.
    let events = places_events(&first, fixture.meal, day).await;
    let mut places = Places::default();
    let mut tickets = Vec::new();
    for (_, event) in &events {
        if let PlacesEvent::WaitListJoined {
            ticket,
            position,
            reservation_id,
            ..
        } = event
        {
            tickets.push(*ticket);
            // The reservation says what its day's places said.
            let own = reservation_events(&first, *reservation_id).await;
            assert_eq!(
                own.last(),
                Some(&ReservationEvent::WaitListed {
                    ticket: *ticket,
                    position: *position
                })
            );
        }
        cqrs_es::Aggregate::apply(&mut places, event.clone());
        assert!(places.holders.len() <= 5, "{events:?}");
    }
    assert_eq!(places.holders.len(), 5);
    assert_eq!(
        tickets,
        (1..=11).collect::<Vec<u32>>(),
        "commit order is ticket order"
    );
    let confirmed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Reservation' AND event_type = 'ReservationConfirmed'
           AND aggregate_id = ANY($1)",
    )
    .bind(
        children
            .iter()
            .map(|&c| reservation_id(c, fixture.meal, day).to_string())
            .collect::<Vec<_>>(),
    )
    .fetch_one(&first.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, 5);
    second.stop().await;
}
