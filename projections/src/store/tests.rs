use chrono::NaiveDate;
use espace_famille_domain::reservation::{Origin, Reservation, ReservationEvent, ReservationStatus, Slot};

use super::*;

/// An event as the store reads it: its sequence, version and payload.
fn stored(sequence: i64, payload: String) -> StoredEvent {
    let version = if payload.contains("ReservationRequested") {
        "2"
    } else {
        "1"
    };
    StoredEvent {
        sequence,
        version: version.into(),
        payload,
    }
}

fn requested() -> String {
    let slot = Slot {
        family_id: Uuid::from_u128(1),
        child_id: Uuid::from_u128(2),
        collectivity_id: Uuid::from_u128(3),
        service_id: Uuid::from_u128(4),
        unit_id: Uuid::from_u128(5),
        date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
    };
    serde_json::to_string(&ReservationEvent::ReservationRequested {
        slot,
        origin: Origin::Calendar,
    })
    .unwrap()
}

fn confirmed() -> String {
    serde_json::to_string(&ReservationEvent::ReservationConfirmed).unwrap()
}

#[test]
fn streams_are_folded_each_on_its_own_and_returned_in_the_order_asked() {
    let ids = ["b", "a", "c"].map(String::from);
    let events = vec![
        ("a".to_string(), stored(1, requested())),
        ("a".to_string(), stored(2, confirmed())),
        ("b".to_string(), stored(1, requested())),
    ];
    let loaded = fold_many::<Reservation>(&ids, events).unwrap();
    let states: Vec<(usize, bool, ReservationStatus)> = loaded
        .iter()
        .map(|l| (l.version, l.aggregate.slot.is_some(), l.aggregate.status))
        .collect();
    assert_eq!(
        states,
        [
            (1, true, ReservationStatus::Free),
            (2, true, ReservationStatus::Confirmed),
            (0, false, ReservationStatus::Free),
        ]
    );
}

#[test]
fn a_kept_state_takes_the_events_that_follow_it_and_refuses_a_gap() {
    let mut kept = Loaded::<Reservation>::new();
    kept.apply_stored("r", [stored(1, requested())], None).unwrap();
    kept.apply_stored("r", [stored(2, confirmed())], None).unwrap();
    assert_eq!(
        (kept.version, kept.aggregate.status),
        (2, ReservationStatus::Confirmed)
    );

    let mut behind = Loaded::<Reservation>::new();
    behind.apply_stored("r", [stored(1, requested())], None).unwrap();
    let gap = behind.apply_stored("r", [stored(3, confirmed())], None);
    assert!(matches!(gap, Err(StoreError::Corrupt(_))), "{gap:?}");
    assert_eq!(behind.version, 1, "nothing past the gap applied");

    let garbled = Loaded::<Reservation>::new().apply_stored("r", [stored(1, "{}".to_string())], None);
    assert!(matches!(garbled, Err(StoreError::Corrupt(m)) if m.contains("r #1")));
}

#[test]
fn a_stream_stored_before_a_change_folds_as_if_written_after_it() {
    // A request of version 1: the slot alone.
    let v1 = requested().replace(r#","origin":"Calendar""#, "");
    assert!(!v1.contains("origin"));
    let old = StoredEvent {
        sequence: 1,
        version: "1".into(),
        payload: v1.clone(),
    };
    let mut loaded = Loaded::<Reservation>::new();
    loaded
        .apply_stored("r", [old.clone(), stored(2, confirmed())], None)
        .unwrap();
    assert_eq!(
        (loaded.version, loaded.aggregate.status),
        (2, ReservationStatus::Confirmed)
    );
    assert!(loaded.aggregate.slot.is_some());
    let folded = fold_many::<Reservation>(&["r".to_string()], vec![("r".to_string(), old)]).unwrap();
    assert!(folded[0].aggregate.slot.is_some());
    // Read as the current version, it would not decode.
    let unversioned = Loaded::<Reservation>::new().apply_stored("r", [stored(1, v1)], None);
    assert!(
        matches!(unversioned, Err(StoreError::Corrupt(_))),
        "{unversioned:?}"
    );
}
