//! Old events read as current ones.
//!
//! A change to an event's payload gives the event a new `event_version`;
//! the events stored before it keep theirs and are never rewritten (the
//! store is append-only and hash-chained). Every reader of the store (the
//! aggregates, the history, the projections and the replay, the export)
//! hands what it read to [`upcast`], which brings it up to the current
//! version by the [`UPCASTERS`], one version at a time.
//!
//! An upcaster changes one event type of one aggregate type from one
//! version to the next; it may only add what the old version could not
//! say (a default that says so, never a guess) or move what it said.

use serde_json::Value;

/// One change of a stored payload: `event_type` of `aggregate_type` from
/// version `from` to `to`.
pub struct Upcaster {
    pub aggregate_type: &'static str,
    pub event_type: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    /// Changes the payload's content (the object under the event's name).
    pub change: fn(&mut serde_json::Map<String, Value>) -> Result<(), String>,
}

/// Every change so far, oldest first.
pub static UPCASTERS: &[Upcaster] = &[Upcaster {
    aggregate_type: "Reservation",
    event_type: "ReservationRequested",
    from: "1",
    to: "2",
    change: reservation_requested_origin,
}];

/// `ReservationRequested` v2 says where the request came from; a v1
/// request did not record it.
fn reservation_requested_origin(content: &mut serde_json::Map<String, Value>) -> Result<(), String> {
    if content.contains_key("origin") {
        return Err("a version 1 request with an origin".into());
    }
    content.insert("origin".into(), Value::String("Unrecorded".into()));
    Ok(())
}

/// A stored payload that no upcaster could bring to the current version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{aggregate_type} {event_type} version {version}: {reason}")]
pub struct UpcastError {
    pub aggregate_type: String,
    pub event_type: String,
    pub version: String,
    pub reason: String,
}

/// The upcaster of an event stored at `version`, if it is not current.
fn next(aggregate_type: &str, event_type: &str, version: &str) -> Option<&'static Upcaster> {
    UPCASTERS
        .iter()
        .find(|u| u.from == version && u.event_type == event_type && u.aggregate_type == aggregate_type)
}

/// Whether an event stored at `version` is read as stored.
pub fn is_current(aggregate_type: &str, event_type: &str, version: &str) -> bool {
    next(aggregate_type, event_type, version).is_none()
}

/// Brings a stored payload (as JSON) up to its event's current version;
/// returns that version. A current one is returned untouched.
pub fn upcast(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: &mut Value,
) -> Result<String, UpcastError> {
    let mut version = version.to_string();
    while let Some(upcaster) = next(aggregate_type, event_type, &version) {
        let fail = |reason: String| UpcastError {
            aggregate_type: aggregate_type.into(),
            event_type: event_type.into(),
            version: version.clone(),
            reason,
        };
        let content = payload
            .get_mut(event_type)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| fail(format!("the payload is not an object under {event_type}")))?;
        (upcaster.change)(content).map_err(fail)?;
        version = upcaster.to.to_string();
    }
    Ok(version)
}

/// [`upcast`] over a payload as JSON text: `None` when it is current (not
/// parsed), otherwise the current version and the payload's new text.
pub fn upcast_text(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: &str,
) -> Result<Option<(String, String)>, UpcastError> {
    if is_current(aggregate_type, event_type, version) {
        return Ok(None);
    }
    let mut value: Value = serde_json::from_str(payload).map_err(|e| UpcastError {
        aggregate_type: aggregate_type.into(),
        event_type: event_type.into(),
        version: version.into(),
        reason: e.to_string(),
    })?;
    let current = upcast(aggregate_type, event_type, version, &mut value)?;
    Ok(Some((current, value.to_string())))
}

/// [`upcast_text`] for a reader that has the payload and its version but
/// not its type: the type is the payload's tag (events are stored as
/// `{"Type":{...}}`, or `"Type"` for one without content), read only when
/// an upcaster of the aggregate type starts at that version.
pub fn upcast_untyped(
    aggregate_type: &str,
    version: &str,
    payload: &str,
) -> Result<Option<(String, String)>, UpcastError> {
    if !UPCASTERS
        .iter()
        .any(|u| u.from == version && u.aggregate_type == aggregate_type)
    {
        return Ok(None);
    }
    let event_type = tag(payload).ok_or_else(|| UpcastError {
        aggregate_type: aggregate_type.into(),
        event_type: String::new(),
        version: version.into(),
        reason: "the payload names no event type".into(),
    })?;
    upcast_text(aggregate_type, event_type, version, payload)
}

/// The event type a payload is tagged with, read from its text.
fn tag(payload: &str) -> Option<&str> {
    let rest = payload.trim_start();
    let rest = match rest.strip_prefix('{') {
        Some(object) => object.trim_start(),
        None => rest,
    };
    let name = rest.strip_prefix('"')?;
    name.find('"').map(|end| &name[..end])
}

#[cfg(test)]
mod tests {
    use cqrs_es::DomainEvent;
    use serde_json::json;

    use super::*;
    use crate::reservation::{Origin, ReservationEvent};

    const SLOT: &str = r#"{"family_id":"6d3c5a80-91f2-4c1e-9b7d-2f41a0c8e517","child_id":"6d3c5a80-91f2-4c1e-9b7d-2f41a0c8e518","collectivity_id":"6d3c5a80-91f2-4c1e-9b7d-2f41a0c8e519","service_id":"6d3c5a80-91f2-4c1e-9b7d-2f41a0c8e51a","unit_id":"6d3c5a80-91f2-4c1e-9b7d-2f41a0c8e51b","date":"2026-12-07"}"#;

    #[test]
    fn a_version_1_request_reads_as_version_2_with_its_origin_unrecorded() {
        let v1 = format!(r#"{{"ReservationRequested":{{"slot":{SLOT}}}}}"#);
        assert!(
            serde_json::from_str::<ReservationEvent>(&v1).is_err(),
            "v2 requires the origin"
        );
        let (version, text) = upcast_text("Reservation", "ReservationRequested", "1", &v1)
            .unwrap()
            .unwrap();
        assert_eq!(version, "2");
        let event: ReservationEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(event.event_version(), version, "read as the current version");
        match event {
            ReservationEvent::ReservationRequested { origin, slot } => {
                assert_eq!(origin, Origin::Unrecorded);
                assert_eq!(
                    serde_json::to_value(slot).unwrap(),
                    serde_json::from_str::<Value>(SLOT).unwrap()
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn current_events_and_other_types_are_read_as_stored() {
        let v2 = format!(r#"{{"ReservationRequested":{{"slot":{SLOT},"origin":"Period"}}}}"#);
        assert_eq!(
            upcast_text("Reservation", "ReservationRequested", "2", &v2),
            Ok(None)
        );
        assert_eq!(
            upcast_text(
                "Reservation",
                "ReservationConfirmed",
                "1",
                "\"ReservationConfirmed\""
            ),
            Ok(None)
        );
        assert_eq!(
            upcast_text("Places", "ReservationRequested", "1", "{}"),
            Ok(None),
            "another aggregate's event of the same name"
        );
    }

    #[test]
    fn a_reader_without_the_type_takes_it_from_the_payload() {
        let v1 = format!(r#"{{ "ReservationRequested": {{"slot":{SLOT}}}}}"#);
        let (version, text) = upcast_untyped("Reservation", "1", &v1).unwrap().unwrap();
        assert_eq!(version, "2");
        assert!(text.contains(r#""origin":"Unrecorded""#), "{text}");
        assert_eq!(
            upcast_untyped("Reservation", "1", "\"ReservationConfirmed\""),
            Ok(None)
        );
        assert_eq!(upcast_untyped("Reservation", "2", &text), Ok(None));
        assert_eq!(
            upcast_untyped("Family", "1", "not even JSON"),
            Ok(None),
            "nothing to change"
        );
        assert!(upcast_untyped("Reservation", "1", "42").is_err());
    }

    #[test]
    fn a_payload_the_upcaster_cannot_read_is_an_error_naming_the_event() {
        let error = upcast_text(
            "Reservation",
            "ReservationRequested",
            "1",
            "\"ReservationRequested\"",
        )
        .unwrap_err();
        assert_eq!(
            (error.event_type.as_str(), error.version.as_str()),
            ("ReservationRequested", "1")
        );
        let mut claims_origin = json!({ "ReservationRequested": { "slot": {}, "origin": "Calendar" } });
        assert!(upcast("Reservation", "ReservationRequested", "1", &mut claims_origin).is_err());
    }

    #[test]
    fn every_upcaster_ends_at_the_version_the_domain_writes() {
        // Each chain ends where the event type is written today.
        let written = |aggregate: &str, event_type: &str| match (aggregate, event_type) {
            ("Reservation", "ReservationRequested") => ReservationEvent::ReservationRequested {
                slot: serde_json::from_str(SLOT).unwrap(),
                origin: Origin::Calendar,
            }
            .event_version(),
            other => panic!("no current event for {other:?}"),
        };
        for upcaster in UPCASTERS {
            let mut version = upcaster.from.to_string();
            while let Some(next) = next(upcaster.aggregate_type, upcaster.event_type, &version) {
                version = next.to.to_string();
            }
            assert_eq!(version, written(upcaster.aggregate_type, upcaster.event_type));
        }
    }
}
