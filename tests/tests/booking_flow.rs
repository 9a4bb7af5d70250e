//! The first booking flow, end to end over HTTP against a real PostgreSQL.

use std::collections::HashMap;

use espace_famille_domain::reservation::reservation_id;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

async fn calendar(
    app: &TestApp,
    fixture: &Fixture,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Vec<Value> {
    let response = app
        .gql(
            Some(&fixture.parent()),
            CALENDAR,
            json!({ "child": fixture.child, "unit": fixture.meal, "from": from, "to": to }),
        )
        .await;
    response.data("calendar").as_array().unwrap().clone()
}

fn statuses(days: &[Value]) -> HashMap<String, String> {
    days.iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_parent_books_cancels_and_an_agent_approves_and_everything_shows_at_once() {
    let app = spawn_app().await;
    let days = future_canteen_days(4);
    let fixture = setup_commune(&app, &days).await;

    let basket_id = Uuid::new_v4();
    let outcome = app
        .gql(
            Some(&fixture.parent()),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": basket_id, "familyId": fixture.family, "lines": book_lines(&fixture, &days) } }),
        )
        .await;
    let outcome = outcome.data("submitBasket");
    assert_eq!(outcome["status"], "ACCEPTED");
    assert!(outcome["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["accepted"] == true));

    // Read-your-writes: the calendar read model already has the booking.
    let shown = calendar(&app, &fixture, days[0], days[3]).await;
    let status = statuses(&shown);
    for day in &days {
        assert_eq!(status[&day.to_string()], "CONFIRMED", "{day} in {shown:?}");
    }
    let first = shown.iter().find(|d| d["date"] == days[0].to_string()).unwrap();
    assert_eq!(first["canBook"], false);
    assert_eq!(first["bookRefusal"]["code"], "ALREADY_BOOKED");
    assert_eq!(first["canCancel"], true);
    assert_eq!(first["state"], "BOOKED");
    // Deadlines read as the portal shows them: Paris time, with its offset
    // ("J-2 à 12h" is noon there).
    let deadline = first["bookingDeadline"].as_str().unwrap();
    assert!(
        deadline.ends_with("T12:00:00+01:00") || deadline.ends_with("T12:00:00+02:00"),
        "{deadline}"
    );
    assert!(first["cancellationDeadline"].is_string());
    let reservation_id = first["reservationId"].as_str().unwrap().to_string();

    let cancelled = app
        .gql(
            Some(&fixture.parent()),
            "mutation($id: UUID!) { requestCancellation(reservationId: $id) { status } }",
            json!({ "id": reservation_id }),
        )
        .await;
    assert_eq!(
        cancelled.data("requestCancellation")["status"],
        "CANCELLATION_REQUESTED"
    );

    let queue = app
        .gql(
            Some(&fixture.agent()),
            "query($c: UUID!) { agentWorkQueue(collectivityId: $c) { reservationId date requestedBy } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    let queue = queue.data("agentWorkQueue").as_array().unwrap().clone();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["reservationId"], reservation_id.as_str());
    let requested_by = queue[0]["requestedBy"].clone();

    let approved = app
        .gql(
            Some(&fixture.agent()),
            "mutation($id: UUID!) {
               approveCancellation(reservationId: $id, comment: \"enfant malade\") {
                 status history { sequence eventType actorRole actorId correlationId commandId payload }
               }
             }",
            json!({ "id": reservation_id }),
        )
        .await;
    let approved = approved.data("approveCancellation");
    assert_eq!(approved["status"], "CANCELLED");
    let mail = app.next_mail_to(&fixture.guardian_email).await;
    assert!(
        mail.contains("L'annulation de la réservation de Louise")
            && mail.contains("est acceptée : ce jour ne vous sera pas facturé")
            && mail.contains("Commentaire : enfant malade"),
        "{mail}"
    );
    let history = approved["history"].as_array().unwrap();
    let types: Vec<&str> = history.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "ReservationRequested",
            "ReservationConfirmed",
            "CancellationRequested",
            "AgentApproved"
        ]
    );
    let roles: Vec<&str> = history.iter().map(|e| e["actorRole"].as_str().unwrap()).collect();
    assert_eq!(roles, ["parent", "parent", "parent", "agent"]);
    assert_eq!(history[2]["actorId"], requested_by, "the queue names who asked");
    assert_ne!(
        history[3]["actorId"], requested_by,
        "the agent is another account"
    );
    assert_eq!(history[0]["correlationId"], basket_id.to_string());
    assert_eq!(history[3]["payload"]["AgentApproved"]["comment"], "enfant malade");
    assert!(history.iter().all(|e| e["commandId"].is_string()));

    let status = statuses(&calendar(&app, &fixture, days[0], days[3]).await);
    assert_eq!(status[&days[0].to_string()], "CANCELLED");
    assert_eq!(status[&days[1].to_string()], "CONFIRMED");
    let queue = app
        .gql(
            Some(&fixture.agent()),
            "query($c: UUID!) { agentWorkQueue(collectivityId: $c) { reservationId } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(queue.data("agentWorkQueue").as_array().unwrap().len(), 0);

    // An auditor reads the same history.
    let audited = app
        .gql(
            Some(&auditor(&app).await),
            "query($id: UUID!) { reservation(id: $id) { status history { eventType } } }",
            json!({ "id": reservation_id }),
        )
        .await;
    assert_eq!(
        audited.data("reservation")["history"].as_array().unwrap().len(),
        4
    );

    // Booked again, the cancelled day is the same reservation, requested
    // anew: its calendar row is updated, not added.
    let again = app.book(&fixture, &days[..1]).await;
    assert_eq!(again.data("submitBasket")["status"], "ACCEPTED");
    let status = statuses(&calendar(&app, &fixture, days[0], days[3]).await);
    assert_eq!(status[&days[0].to_string()], "CONFIRMED");
    assert_eq!(status[&days[1].to_string()], "CONFIRMED");

    // Rebuilt from the events, one batch each (a reservation's requests,
    // cancellation and new request then fall in different batches), every
    // read model matches the live one; and in one batch for all.
    assert!(app.rebuild_all_read_models_in_batches(1).await > 0);
    app.rebuild_all_read_models().await;
    let status = statuses(&calendar(&app, &fixture, days[0], days[3]).await);
    assert_eq!(status[&days[0].to_string()], "CONFIRMED");
    app.stop().await;
}

#[tokio::test]
async fn a_rejected_cancellation_keeps_the_booking_and_says_why() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    app.book(&fixture, &days).await.data("submitBasket");
    let id = calendar(&app, &fixture, days[0], days[0]).await[0]["reservationId"].clone();
    app.request_cancellation(&fixture, &id)
        .await
        .data("requestCancellation");

    let empty_reason = app
        .gql(
            Some(&fixture.agent()),
            "mutation($id: UUID!) { rejectCancellation(reservationId: $id, reason: \"  \") { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(empty_reason.error_code(), "VALIDATION");

    let rejected = app
        .gql(
            Some(&fixture.agent()),
            "mutation($id: UUID!) {
               rejectCancellation(reservationId: $id, reason: \"repas déjà commandé\") { status history { eventType payload } }
             }",
            json!({ "id": id }),
        )
        .await;
    let rejected = rejected.data("rejectCancellation");
    assert_eq!(rejected["status"], "CONFIRMED");
    let mail = app.next_mail_to(&fixture.guardian_email).await;
    assert!(
        mail.contains("est refusée : la réservation est maintenue")
            && mail.contains("Motif : repas déjà commandé"),
        "{mail}"
    );
    assert_eq!(
        rejected["history"][3]["payload"]["AgentRejected"]["reason"],
        "repas déjà commandé"
    );
    assert_eq!(
        calendar(&app, &fixture, days[0], days[0]).await[0]["status"],
        "CONFIRMED"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retried_basket_books_nothing_twice_and_returns_the_same_outcome() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let fixture = setup_commune(&app, &days).await;
    let input = json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": book_lines(&fixture, &days) } });

    let first = app
        .gql(Some(&fixture.parent()), SUBMIT_BASKET, input.clone())
        .await;
    let second = app.gql(Some(&fixture.parent()), SUBMIT_BASKET, input).await;
    assert_eq!(first.data("submitBasket")["status"], "ACCEPTED");
    assert_eq!(first.data("submitBasket"), second.data("submitBasket"));

    for line in first.data("submitBasket")["lines"].as_array().unwrap() {
        let id = line["reservationId"].as_str().unwrap();
        assert_eq!(
            app.events_in("Reservation", id).await,
            2,
            "requested + confirmed, once"
        );
    }
    let baskets: i64 = sqlx::query_scalar("SELECT count(*) FROM baskets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(baskets, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_basket_with_a_refused_line_writes_nothing_and_gives_each_reason() {
    let app = spawn_app().await;
    let mut days = future_canteen_days(2);
    let wednesday = future_wednesday();
    days.push(wednesday);
    let fixture = setup_commune(&app, &days).await;

    let outcome = app.book(&fixture, &days).await;
    let outcome = outcome.data("submitBasket");
    assert_eq!(outcome["status"], "REJECTED");
    let lines = outcome["lines"].as_array().unwrap();
    assert_eq!(lines[0]["accepted"], true);
    assert_eq!(lines[1]["accepted"], true);
    assert_eq!(lines[2]["accepted"], false);
    // Valid, but not written: the basket was refused whole.
    assert!(lines.iter().all(|l| l["written"] == false), "{outcome}");
    assert_eq!(lines[2]["refusal"]["code"], "UNIT_CLOSED");
    // In French, unless the request prefers English.
    assert_eq!(
        lines[2]["refusal"]["closedReason"],
        "le service ne fonctionne pas le mercredi"
    );
    assert!(
        lines[2]["refusal"]["message"]
            .as_str()
            .unwrap()
            .starts_with("le service est fermé le mercredi "),
        "{}",
        lines[2]["refusal"]
    );
    let english = app
        .gql_in(
            Some("en-GB,en;q=0.9,fr;q=0.5"),
            Some(&fixture.parent()),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family,
                               "lines": book_lines(&fixture, &[wednesday]) } }),
        )
        .await;
    let refusal = &english.data("submitBasket")["lines"][0]["refusal"];
    assert_eq!(refusal["closedReason"], "the unit does not run on Wednesdays");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .starts_with("the unit is closed on Wednesday "),
        "{refusal}"
    );
    let before = calendar(&app, &fixture, wednesday, wednesday).await;
    assert_eq!(before[0]["state"], "CLOSED");
    let free = calendar(&app, &fixture, days[0], days[0]).await;
    assert_eq!(free[0]["state"], "BOOKABLE");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Reservation'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 0, "a refused basket writes nothing");
    let status = statuses(&calendar(&app, &fixture, days[0], days[1]).await);
    assert!(status.values().all(|s| s == "FREE"), "{status:?}");

    // Asked to keep the valid lines, the same basket books the two days.
    let keep_valid = json!({ "input": {
        "basketId": Uuid::new_v4(), "familyId": fixture.family,
        "lines": book_lines(&fixture, &days), "keepValidLines": true
    } });
    let partial = app
        .gql(Some(&fixture.parent()), SUBMIT_BASKET, keep_valid.clone())
        .await;
    assert_eq!(partial.data("submitBasket")["status"], "PARTIAL");
    let written: Vec<bool> = partial.data("submitBasket")["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["written"].as_bool().unwrap())
        .collect();
    assert_eq!(written, [true, true, false]);
    // Retried, it returns the same outcome, the refused line's reason
    // included, from what was kept of it.
    let retried = app.gql(Some(&fixture.parent()), SUBMIT_BASKET, keep_valid).await;
    assert_eq!(partial.data("submitBasket"), retried.data("submitBasket"));
    // The two days may straddle a weekend: only they are booked.
    let status = statuses(&calendar(&app, &fixture, days[0], days[1]).await);
    let booked: Vec<String> = days[..2].iter().map(|d| d.to_string()).collect();
    for (day, s) in &status {
        assert_eq!(s == "CONFIRMED", booked.contains(day), "{status:?}");
    }
    assert!(booked.iter().all(|d| status.contains_key(d)), "{status:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_day_already_booked_is_refused_as_such_beside_new_days_and_keeps_its_events() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let fixture = setup_commune(&app, &days).await;
    assert_eq!(
        app.book(&fixture, &days[..1]).await.data("submitBasket")["status"],
        "ACCEPTED"
    );
    let booked = reservation_id(fixture.child, fixture.meal, days[0]).to_string();

    // Booked again beside two new days: the booked day is refused for what
    // it is, and only the new days are written.
    let outcome = app
        .gql(
            Some(&fixture.parent()),
            SUBMIT_BASKET,
            json!({ "input": {
                "basketId": Uuid::new_v4(), "familyId": fixture.family,
                "lines": book_lines(&fixture, &days), "keepValidLines": true
            } }),
        )
        .await;
    let outcome = outcome.data("submitBasket");
    assert_eq!(outcome["status"], "PARTIAL", "{outcome}");
    let lines = outcome["lines"].as_array().unwrap();
    assert_eq!(lines[0]["refusal"]["code"], "ALREADY_BOOKED", "{outcome}");
    assert!(lines[1..].iter().all(|l| l["accepted"] == true), "{outcome}");
    assert_eq!(
        app.events_in("Reservation", &booked).await,
        2,
        "requested + confirmed, once"
    );
    for day in &days[1..] {
        let id = reservation_id(fixture.child, fixture.meal, *day).to_string();
        assert_eq!(app.events_in("Reservation", &id).await, 2);
    }

    // Alone, it is rejected with the same reason.
    let alone = app.book(&fixture, &days[..1]).await;
    let alone = alone.data("submitBasket");
    assert_eq!(alone["status"], "REJECTED");
    assert_eq!(alone["lines"][0]["refusal"]["code"], "ALREADY_BOOKED", "{alone}");

    // Twice in one basket that keeps nothing unless all is valid: both
    // lines are refused, each for its own reason, though a basket that
    // writes nothing breaks no key.
    let twice = app.book(&fixture, &[days[0], days[0]]).await;
    let twice = twice.data("submitBasket");
    assert_eq!(twice["status"], "REJECTED");
    assert_eq!(twice["lines"][0]["refusal"]["code"], "ALREADY_BOOKED", "{twice}");
    assert_eq!(twice["lines"][1]["refusal"]["code"], "DUPLICATE_LINE", "{twice}");
    assert_eq!(app.events_in("Reservation", &booked).await, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_line_past_its_deadline_or_for_a_child_not_enrolled_is_refused_with_its_reason() {
    let app = spawn_app().await;
    // A canteen day that has already passed.
    let past = (1..=30)
        .map(|n| chrono::Utc::now().date_naive() - chrono::Duration::days(n))
        .find(|d| is_canteen_day(*d))
        .unwrap();
    let fixture = setup_commune(&app, &[past]).await;
    let outcome = app.book(&fixture, &[past]).await;
    let refusal = &outcome.data("submitBasket")["lines"][0]["refusal"];
    assert_eq!(refusal["code"], "DEADLINE_PASSED");
    assert!(
        refusal["deadline"].is_string(),
        "the deadline itself is given: {refusal}"
    );

    // A year the child is not enrolled for, its calendar published.
    let next_year = (past + chrono::Duration::days(365))
        .iter_days()
        .find(|d| is_canteen_day(*d))
        .unwrap();
    app.gql(
        Some(&fixture.agent()),
        "mutation($c: UUID!, $y: Int!) { publishSchoolYear(collectivityId: $c, schoolYear: $y) { id } }",
        serde_json::json!({ "c": fixture.collectivity, "y": school_years(&[next_year])[0] }),
    )
    .await
    .data("publishSchoolYear");
    let outcome = app.book(&fixture, &[next_year]).await;
    assert_eq!(
        outcome.data("submitBasket")["lines"][0]["refusal"]["code"],
        "NOT_ENROLLED"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_baskets_on_the_same_slots_book_each_slot_exactly_once() {
    let app = spawn_app().await;
    let days = future_canteen_days(8);
    let fixture = setup_commune(&app, &days).await;
    let app = std::sync::Arc::new(app);

    // Two baskets race for every day.
    let mut racers = Vec::new();
    for day in &days {
        for _ in 0..2 {
            let app = app.clone();
            let lines = book_lines(&fixture, &[*day]);
            let (parent, family) = (fixture.parent(), fixture.family);
            racers.push(tokio::spawn(async move {
                app.gql(
                    Some(&parent),
                    SUBMIT_BASKET,
                    json!({ "input": { "basketId": Uuid::new_v4(), "familyId": family, "lines": lines } }),
                )
                .await
            }));
        }
    }
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for racer in racers {
        let response = racer.await.unwrap();
        if response.0.get("errors").is_some() {
            assert_eq!(response.error_code(), "CONFLICT");
            continue;
        }
        let outcome = response.data("submitBasket");
        let line = &outcome["lines"][0];
        if outcome["status"] == "ACCEPTED" {
            *accepted
                .entry(line["date"].as_str().unwrap().to_string())
                .or_default() += 1;
        } else {
            assert_eq!(line["refusal"]["code"], "ALREADY_BOOKED", "{outcome}");
        }
    }
    for day in &days {
        assert_eq!(
            accepted.get(&day.to_string()),
            Some(&1),
            "{day} must be won exactly once"
        );
        let id = reservation_id(fixture.child, fixture.meal, *day);
        assert_eq!(app.events_in("Reservation", &id.to_string()).await, 2);
    }
    let status = statuses(&calendar(&app, &fixture, days[0], days[7]).await);
    assert_eq!(status.values().filter(|s| *s == "CONFIRMED").count(), 8);
}

#[tokio::test]
async fn a_period_on_even_weeks_across_the_holidays_books_its_open_days_and_skips_the_closed_ones() {
    use chrono::Datelike;
    let app = spawn_app().await;
    let first = chrono::Utc::now().date_naive() + chrono::Duration::days(14);
    let last = first + chrono::Duration::days(55);
    let fixture = setup_commune(&app, &[first, last]).await;
    let outcome = app
        .gql(
            Some(&fixture.parent()),
            SUBMIT_BASKET,
            json!({ "input": {
                "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": [],
                "periods": [{
                    "action": "BOOK", "childIds": [fixture.child], "unitIds": [fixture.meal],
                    "first": first, "last": last, "weekdays": ["MON", "TUE", "WED", "THU", "FRI"], "weeks": "EVEN"
                }]
            } }),
        )
        .await;
    let outcome = outcome.data("submitBasket");
    assert_eq!(outcome["status"], "ACCEPTED", "{outcome}");
    let lines = outcome["lines"].as_array().unwrap();
    let even: Vec<chrono::NaiveDate> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .filter(|d| d.weekday().num_days_from_monday() < 5 && d.iso_week().week() % 2 == 0)
        .collect();
    assert_eq!(
        lines.len(),
        even.len(),
        "a line per weekday of the even weeks, last day included"
    );
    let open: Vec<String> = even
        .iter()
        .filter(|d| is_canteen_day(**d))
        .map(|d| d.to_string())
        .collect();
    let written: Vec<String> = lines
        .iter()
        .filter(|l| l["written"] == true)
        .map(|l| l["date"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(written, open);
    assert!(
        open.len() < even.len(),
        "some days are closed: Wednesdays, holidays"
    );
    for line in lines.iter().filter(|l| l["written"] == false) {
        assert_eq!(line["skipped"], true, "{line}");
        assert_eq!(line["refusal"]["code"], "UNIT_CLOSED");
    }
    let booked = statuses(&calendar(&app, &fixture, first, last).await);
    let confirmed: Vec<&String> = booked
        .iter()
        .filter(|(_, s)| *s == "CONFIRMED")
        .map(|(d, _)| d)
        .collect();
    assert_eq!(confirmed.len(), open.len());
    // Each request records that it came from a period.
    let written_line = lines.iter().find(|l| l["written"] == true).unwrap();
    let history = app
        .gql(
            Some(&fixture.parent()),
            "query($id: UUID!) { history(aggregate: RESERVATION, id: $id, first: 1) { events { payload } } }",
            json!({ "id": written_line["reservationId"] }),
        )
        .await;
    assert_eq!(
        history.data("history")["events"][0]["payload"]["ReservationRequested"]["origin"],
        "Period"
    );

    // A pattern with no day, and a reversed range, are refused whole.
    for (from, to, weekdays) in [(first, first, vec!["SAT"]), (last, first, vec!["MON"])] {
        let refused = app
            .gql(
                Some(&fixture.parent()),
                SUBMIT_BASKET,
                json!({ "input": {
                    "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": [],
                    "periods": [{
                        "action": "BOOK", "childIds": [fixture.child], "unitIds": [fixture.meal],
                        "first": from, "last": to, "weekdays": weekdays
                    }]
                } }),
            )
            .await;
        assert_eq!(refused.error_code(), "VALIDATION");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_familys_week_shows_each_childs_units_their_seven_days_and_the_meals_booked() {
    use chrono::Datelike;
    let app = spawn_app().await;
    let days = future_canteen_days(6);
    let fixture = setup_commune(&app, &days).await;
    let week = days[0].iso_week();
    let in_week: Vec<chrono::NaiveDate> = days.iter().copied().filter(|d| d.iso_week() == week).collect();
    app.book(&fixture, &days).await.data("submitBasket");
    const WEEK: &str = "query($f: UUID!, $y: Int!, $w: Int!) {
      familyWeek(familyId: $f, year: $y, week: $w) {
        year week first last children { childId firstName booked units { unitId name days { date status } } }
      }
    }";
    let variables = json!({ "f": fixture.family, "y": week.year(), "w": week.week() });
    let answer = app.gql(Some(&fixture.parent()), WEEK, variables.clone()).await;
    let answer = answer.data("familyWeek");
    let child = &answer["children"][0];
    assert_eq!(child["firstName"], "Louise");
    assert_eq!(child["booked"], in_week.len() as i64);
    let unit = &child["units"][0];
    assert_eq!(unit["name"], "Repas");
    let unit_days = unit["days"].as_array().unwrap();
    assert_eq!(unit_days.len(), 7);
    assert_eq!(answer["first"], unit_days[0]["date"]);
    for day in unit_days {
        let booked = in_week.iter().any(|d| day["date"] == json!(d));
        assert_eq!(day["status"] == "CONFIRMED", booked, "{day}");
    }
    // The commune's agent reads it too; another family's guardian does not.
    let by_agent = app.gql(Some(&fixture.agent()), WEEK, variables.clone()).await;
    assert_eq!(
        by_agent.data("familyWeek")["children"][0]["booked"],
        in_week.len() as i64
    );
    let other = setup_commune(&app, &days).await;
    let stranger = app.gql(Some(&other.parent()), WEEK, variables).await;
    assert_eq!(stranger.error_code(), "NOT_FOUND");
    let no_such_week = app
        .gql(
            Some(&fixture.parent()),
            WEEK,
            json!({ "f": fixture.family, "y": 2026, "w": 54 }),
        )
        .await;
    assert_eq!(no_such_week.error_code(), "VALIDATION");
    app.stop().await;
}
