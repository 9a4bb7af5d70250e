//! The roll call over HTTP: an agent reads the sheet of a unit's day,
//! records 30 children in one mutation (one there without a booking),
//! corrects one, and the month's counts and the day's headcount follow;
//! bad roll calls are refused whole and write nothing.

use chrono::{Datelike, NaiveDate};
use espace_famille_domain::reservation::{reservation_id, Origin, ReservationEvent, Slot};
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const SHEET: &str = "query($c: UUID!, $u: UUID!, $d: NaiveDate!) {
  rollCall(collectivityId: $c, unitId: $u, date: $d) {
    childId firstName lastName schoolClass needsCare booked absence attendance
  }
}";

const RECORD: &str = "mutation($input: RecordRollCallInput!) {
  recordRollCall(input: $input) { childId reservationId attendance written }
}";

const COUNTS: &str = "query($c: UUID!, $u: UUID, $m: String!) {
  attendanceCounts(collectivityId: $c, unitId: $u, month: $m) {
    childId unitId booked present absentJustified absentUnjustified absencePending unexpectedPresences notTaken
  }
}";

async fn register(app: &TestApp, agent: &str, family: Uuid, first: &str, class: &str) -> Uuid {
    let child = Uuid::new_v4();
    app.gql(
        Some(agent),
        "mutation($f: UUID!, $k: UUID!, $n: String!, $s: String!) {
           registerChild(input: {
             familyId: $f, id: $k, firstName: $n, lastName: \"Durand\", birthDate: \"2017-09-12\", schoolClass: $s
           }) { id }
         }",
        json!({ "f": family, "k": child, "n": first, "s": class }),
    )
    .await
    .data("registerChild");
    child
}

async fn open_family(app: &TestApp, agent: &str, collectivity: Uuid, reference: &str) -> Uuid {
    let family = Uuid::new_v4();
    app.gql(
        Some(agent),
        "mutation($c: UUID!, $f: UUID!, $r: String!, $e: String!) {
           openFamilyAccount(input: { collectivityId: $c, id: $f, familyRef: $r, guardianEmail: $e }) { id }
         }",
        json!({ "c": collectivity, "f": family, "r": reference,
                "e": format!("{}@example.fr", Uuid::new_v4().simple()) }),
    )
    .await
    .data("openFamilyAccount");
    family
}

/// Polls the sheet until it holds `lines` lines (the seeded bookings
/// reach the calendar through the projection).
async fn sheet_of(app: &TestApp, fixture: &Fixture, day: NaiveDate, lines: usize) -> Vec<Value> {
    for _ in 0..200 {
        let sheet = app
            .gql(
                Some(&fixture.agent()),
                SHEET,
                json!({ "c": fixture.collectivity, "u": fixture.meal, "d": day }),
            )
            .await;
        let rows = sheet.data("rollCall").as_array().unwrap().clone();
        if rows.len() == lines {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the sheet of {day} never held {lines} lines");
}

fn mark(child: Uuid, present: bool) -> Value {
    json!({ "childId": child, "present": present })
}

fn record(fixture: &Fixture, day: NaiveDate, marks: &[Value]) -> Value {
    json!({ "input": { "collectivityId": fixture.collectivity, "unitId": fixture.meal, "date": day, "marks": marks } })
}

#[tokio::test]
async fn an_agent_takes_the_roll_call_of_thirty_children_in_one_mutation() {
    let app = spawn_app().await;
    let day = last_canteen_day();
    let fixture = setup_commune(&app, &[day]).await;
    let agent = fixture.agent();
    let slot = |child_id: Uuid, family_id: Uuid| Slot {
        family_id,
        child_id,
        collectivity_id: fixture.collectivity,
        service_id: fixture.canteen,
        unit_id: fixture.meal,
        date: day,
    };

    // 29 children booked: Louise and 28 others; one of them reported
    // ill, another's absence already justified. A 30th child, of another
    // family of the commune, is not booked.
    let mut booked = vec![fixture.child];
    for n in 0..28 {
        let class = if n % 2 == 0 { "CE1" } else { "CM2" };
        booked.push(register(&app, &agent, fixture.family, &format!("Enfant {n:02}"), class).await);
    }
    let neighbours = open_family(&app, &agent, fixture.collectivity, "F-0002").await;
    let walk_in = register(&app, &agent, neighbours, "Hugo", "CP").await;
    let (ill, justified) = (booked[1], booked[2]);
    let confirmed = || {
        vec![
            ReservationEvent::ReservationRequested {
                slot: slot(Uuid::nil(), Uuid::nil()),
                origin: Origin::Calendar,
            },
            ReservationEvent::ReservationConfirmed,
        ]
    };
    let seeded: Vec<(Slot, Vec<ReservationEvent>)> = booked
        .iter()
        .map(|&child| {
            let mut events = confirmed();
            events[0] = ReservationEvent::ReservationRequested {
                slot: slot(child, fixture.family),
                origin: Origin::Calendar,
            };
            if child == ill || child == justified {
                events.push(ReservationEvent::AbsenceReported {
                    reason: "Maladie".into(),
                });
            }
            if child == justified {
                events.push(ReservationEvent::AbsenceJustified {
                    note: Some("certificat médical".into()),
                });
            }
            (slot(child, fixture.family), events)
        })
        .collect();
    seed_reservations(&app, &seeded).await;
    // Louise's guardian declares her peanut allergy and PAI.
    app.gql(
        Some(&fixture.parent()),
        "mutation($f: UUID!, $k: UUID!) {
           declareChildHealth(input: { familyId: $f, childId: $k, allergies: \"arachide\", pai: true }) {
             children { id allergies pai }
           }
         }",
        json!({ "f": fixture.family, "k": fixture.child }),
    )
    .await
    .data("declareChildHealth");

    let sheet = sheet_of(&app, &fixture, day, 29).await;
    assert!(sheet
        .iter()
        .all(|l| l["booked"] == true && l["attendance"].is_null()));
    let line = |sheet: &[Value], child: Uuid| {
        sheet
            .iter()
            .find(|l| l["childId"] == json!(child))
            .cloned()
            .unwrap_or_else(|| panic!("{child} is not on the sheet"))
    };
    assert_eq!(line(&sheet, fixture.child)["needsCare"], true);
    assert_eq!(line(&sheet, fixture.child)["firstName"], "Louise");
    assert_eq!(line(&sheet, booked[3])["needsCare"], false);
    assert_eq!(line(&sheet, booked[3])["schoolClass"], "CE1");
    assert_eq!(line(&sheet, booked[4])["schoolClass"], "CM2");
    assert_eq!(line(&sheet, ill)["absence"], "absence_reported");
    assert_eq!(line(&sheet, justified)["absence"], "absent_justified");
    // By class, then name: the CE1 children first.
    let classes: Vec<&str> = sheet.iter().filter_map(|l| l["schoolClass"].as_str()).collect();
    let mut sorted = classes.clone();
    sorted.sort();
    assert_eq!(classes, sorted);

    // The roll call: everyone there but the two ill children and one more
    // (booked[4]); Hugo came without a booking.
    let absent_too = booked[4];
    let mut marks: Vec<Value> = booked
        .iter()
        .map(|&c| mark(c, ![ill, justified, absent_too].contains(&c)))
        .collect();
    marks.push(mark(walk_in, true));
    assert_eq!(marks.len(), 30);
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let recorded = app.gql(Some(&agent), RECORD, record(&fixture, day, &marks)).await;
    let recorded = recorded.data("recordRollCall").as_array().unwrap().clone();
    assert_eq!(recorded.len(), 30);
    assert!(recorded.iter().all(|m| m["written"] == true));
    let attendance =
        |child: Uuid| recorded.iter().find(|m| m["childId"] == json!(child)).unwrap()["attendance"].clone();
    assert_eq!(attendance(walk_in), "UNEXPECTED");
    assert_eq!(attendance(fixture.child), "PRESENT");
    assert_eq!(attendance(ill), "ABSENT");
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        events_after - events_before,
        30,
        "one event per child, in one write"
    );
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT transaction_id) FROM events WHERE event_type IN ('AttendanceRecorded', 'UnexpectedPresenceRecorded')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(transactions, 1, "the roll call is one transaction");

    // The sheet now shows it, Hugo included (not booked).
    let sheet = sheet_of(&app, &fixture, day, 30).await;
    assert_eq!(line(&sheet, walk_in)["booked"], false);
    assert_eq!(line(&sheet, walk_in)["attendance"], "UNEXPECTED");
    assert_eq!(line(&sheet, booked[5])["attendance"], "PRESENT");

    // The same roll call sent again writes nothing.
    let again = app.gql(Some(&agent), RECORD, record(&fixture, day, &marks)).await;
    assert!(again
        .data("recordRollCall")
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["written"] == false));
    // A correction: booked[5] was not there after all. One new event.
    let corrected = app
        .gql(
            Some(&agent),
            RECORD,
            record(&fixture, day, &[mark(booked[5], false)]),
        )
        .await;
    assert_eq!(corrected.data("recordRollCall")[0]["written"], true);
    let stream = reservation_id(booked[5], fixture.meal, day).to_string();
    assert_eq!(
        app.events_in("Reservation", &stream).await,
        4,
        "requested, confirmed, present, absent"
    );

    // The calendar says what the roll call saw.
    let calendar = |child: Uuid| {
        let app = &app;
        let token = fixture.parent();
        let unit = fixture.meal;
        async move {
            let answer = app
                .gql(
                    Some(&token),
                    CALENDAR,
                    json!({ "child": child, "unit": unit, "from": day, "to": day }),
                )
                .await;
            answer.data("calendar")[0]["state"].clone()
        }
    };
    assert_eq!(calendar(fixture.child).await, "PRESENT");
    assert_eq!(calendar(booked[5]).await, "ABSENT");
    assert_eq!(calendar(justified).await, "ABSENT_JUSTIFIED");

    // The month's counts, per child, and their sums.
    let month = format!("{}-{:02}", day.year(), day.month());
    let counts = app
        .gql(
            Some(&agent),
            COUNTS,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "m": month }),
        )
        .await;
    let counts = counts.data("attendanceCounts").as_array().unwrap().clone();
    let sum = |field: &str| counts.iter().map(|c| c[field].as_i64().unwrap()).sum::<i64>();
    assert_eq!(counts.len(), 30);
    assert_eq!(sum("booked"), 29);
    assert_eq!(sum("present"), 25, "29 booked less 3 absent, less the correction");
    assert_eq!(sum("absentJustified"), 1);
    assert_eq!(sum("absencePending"), 1, "reported ill, not judged yet");
    assert_eq!(sum("absentUnjustified"), 2, "absent with no absence reported");
    assert_eq!(sum("unexpectedPresences"), 1);
    assert_eq!(sum("notTaken"), 0);
    let hugo = counts.iter().find(|c| c["childId"] == json!(walk_in)).unwrap();
    assert_eq!(
        (hugo["booked"].as_i64(), hugo["unexpectedPresences"].as_i64()),
        (Some(0), Some(1))
    );

    // The kitchen's headcount of the day.
    let headcount = app
        .gql(
            Some(&agent),
            "query($c: UUID!, $u: UUID!, $d: NaiveDate!) {
               headcount(collectivityId: $c, unitId: $u, from: $d, to: $d) { date booked expected present unexpected }
             }",
            json!({ "c": fixture.collectivity, "u": fixture.meal, "d": day }),
        )
        .await;
    assert_eq!(
        headcount.data("headcount"),
        &json!([{ "date": day, "booked": 29, "expected": 27, "present": 26, "unexpected": 1 }])
    );

    // Rebuilt from the events, the counts are the same.
    app.rebuild_all_read_models().await;
    let rebuilt = app
        .gql(
            Some(&agent),
            COUNTS,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "m": month }),
        )
        .await;
    assert_eq!(rebuilt.data("attendanceCounts").as_array().unwrap(), &counts);
}

#[tokio::test]
async fn a_bad_roll_call_is_refused_whole_and_writes_nothing() {
    let app = spawn_app().await;
    let day = last_canteen_day();
    let fixture = setup_commune(&app, &[day]).await;
    let agent = fixture.agent();
    let slot = Slot {
        family_id: fixture.family,
        child_id: fixture.child,
        collectivity_id: fixture.collectivity,
        service_id: fixture.canteen,
        unit_id: fixture.meal,
        date: day,
    };
    seed_reservations(&app, &[confirmed(slot)]).await;
    let other = register(&app, &agent, fixture.family, "Paul", "CM1").await;
    // Another commune, its agent, its unit and a family of its own.
    let elsewhere = setup_commune(&app, &[day]).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = count().await;
    let refused = |marks: Vec<Value>, date: NaiveDate, unit: Uuid, token: String| {
        let app = &app;
        let collectivity = fixture.collectivity;
        async move {
            let answer = app
                .gql(
                    Some(&token),
                    RECORD,
                    json!({ "input": { "collectivityId": collectivity, "unitId": unit, "date": date, "marks": marks } }),
                )
                .await;
            answer.error_code().to_string()
        }
    };
    let louise = mark(fixture.child, true);
    // A child twice.
    assert_eq!(
        refused(
            vec![louise.clone(), mark(fixture.child, false)],
            day,
            fixture.meal,
            agent.clone()
        )
        .await,
        "VALIDATION"
    );
    // No child at all.
    assert_eq!(
        refused(vec![], day, fixture.meal, agent.clone()).await,
        "VALIDATION"
    );
    // The unit of another commune.
    assert_eq!(
        refused(vec![louise.clone()], day, elsewhere.meal, agent.clone()).await,
        "NOT_FOUND"
    );
    // The agent of another commune.
    assert_eq!(
        refused(vec![louise.clone()], day, fixture.meal, elsewhere.agent()).await,
        "FORBIDDEN"
    );
    // A day not yet come.
    let later = future_canteen_days(1)[0];
    assert_eq!(
        refused(vec![louise.clone()], later, fixture.meal, agent.clone()).await,
        "ROLL_CALL_TOO_EARLY"
    );
    // A child absent who was never booked spoils the whole roll call.
    assert_eq!(
        refused(
            vec![louise.clone(), mark(other, false)],
            day,
            fixture.meal,
            agent.clone()
        )
        .await,
        "NOT_BOOKED"
    );
    // A child of a family of another commune, there: unknown here.
    assert_eq!(
        refused(
            vec![louise.clone(), mark(elsewhere.child, true)],
            day,
            fixture.meal,
            agent.clone()
        )
        .await,
        "NOT_FOUND"
    );
    // A child id nobody registered.
    assert_eq!(
        refused(
            vec![louise, mark(Uuid::new_v4(), true)],
            day,
            fixture.meal,
            agent.clone()
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(count().await, before, "nothing written");
    // The sheet of another commune's unit is not shown either.
    let sheet = app
        .gql(
            Some(&agent),
            SHEET,
            json!({ "c": fixture.collectivity, "u": elsewhere.meal, "d": day }),
        )
        .await;
    assert_eq!(sheet.error_code(), "NOT_FOUND");
    // Nor may a parent read it.
    let sheet = app
        .gql(
            Some(&fixture.parent()),
            SHEET,
            json!({ "c": fixture.collectivity, "u": fixture.meal, "d": day }),
        )
        .await;
    assert_eq!(sheet.error_code(), "FORBIDDEN");
}
