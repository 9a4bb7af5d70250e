use super::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn school_days() -> OpeningDays {
    OpeningDays {
        weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Thu, Weekday::Fri],
        during: OpenDuring::SchoolTerms,
    }
}

#[test]
fn j_minus_2_without_weekends_puts_a_monday_deadline_on_thursday_noon_paris_time() {
    let rule = DeadlineRule::DaysBefore {
        days: 2,
        at: t(12, 0),
        skip_weekends: true,
        skip_holidays: false,
    };
    // Monday 7 December 2026; Paris is UTC+1 in winter.
    let deadline = rule.deadline_for(d(2026, 12, 7), &SchoolCalendar::default());
    assert_eq!(deadline, utc("2026-12-03T11:00:00Z"));
}

#[test]
fn j_minus_2_counting_weekends_puts_a_monday_deadline_on_saturday() {
    let rule = DeadlineRule::DaysBefore {
        days: 2,
        at: t(12, 0),
        skip_weekends: false,
        skip_holidays: false,
    };
    let deadline = rule.deadline_for(d(2026, 12, 7), &SchoolCalendar::default());
    assert_eq!(deadline, utc("2026-12-05T11:00:00Z"));
}

#[test]
fn a_skipped_public_holiday_pushes_the_deadline_one_day_earlier() {
    let rule = DeadlineRule::DaysBefore {
        days: 1,
        at: t(10, 0),
        skip_weekends: true,
        skip_holidays: true,
    };
    let calendar = SchoolCalendar::typed(TypedCalendar {
        public_holidays: [d(2026, 11, 11)].into(),
        school_holidays: vec![],
    });
    // Thursday 12 November 2026, the day after Armistice day.
    let deadline = rule.deadline_for(d(2026, 11, 12), &calendar);
    assert_eq!(deadline, utc("2026-11-10T09:00:00Z"));
}

#[test]
fn deadlines_follow_summer_time_in_paris() {
    let rule = DeadlineRule::DaysBefore {
        days: 1,
        at: t(12, 0),
        skip_weekends: false,
        skip_holidays: false,
    };
    // Paris is UTC+2 in June.
    let deadline = rule.deadline_for(d(2027, 6, 10), &SchoolCalendar::default());
    assert_eq!(deadline, utc("2027-06-09T10:00:00Z"));
}

#[test]
fn a_deadline_in_the_spring_forward_gap_moves_to_the_end_of_the_gap() {
    // 28 March 2027 at 02:30 does not exist in Paris.
    assert_eq!(
        paris_instant(d(2027, 3, 28), t(2, 30)),
        utc("2027-03-28T01:30:00Z")
    );
}

#[test]
fn thursday_of_the_previous_week_is_found_from_any_day_of_the_week() {
    let rule = DeadlineRule::WeekdayOfPreviousWeek {
        weekday: Weekday::Thu,
        at: t(9, 0),
    };
    let calendar = SchoolCalendar::default();
    // Monday 7 and Friday 11 December 2026 share Thursday 3 December.
    assert_eq!(
        rule.deadline_for(d(2026, 12, 7), &calendar),
        utc("2026-12-03T08:00:00Z")
    );
    assert_eq!(
        rule.deadline_for(d(2026, 12, 11), &calendar),
        utc("2026-12-03T08:00:00Z")
    );
}

#[test]
fn day_of_previous_month_is_clamped_to_the_last_day_of_a_short_month() {
    let rule = DeadlineRule::DayOfPreviousMonth {
        day: 31,
        at: t(18, 0),
    };
    let deadline = rule.deadline_for(d(2027, 3, 15), &SchoolCalendar::default());
    assert_eq!(deadline, utc("2027-02-28T17:00:00Z"));
}

#[test]
fn a_deadline_rule_with_an_impossible_day_of_month_is_refused() {
    let rule = DeadlineRule::DayOfPreviousMonth { day: 0, at: t(18, 0) };
    assert_eq!(rule.validate(), Err(DeadlineRuleError::InvalidDayOfMonth));
}

#[test]
fn a_term_time_unit_is_closed_on_wednesdays_holidays_and_public_holidays() {
    let calendar = SchoolCalendar::typed(TypedCalendar {
        public_holidays: [d(2027, 5, 6)].into(),
        school_holidays: vec![DateRange {
            first: d(2026, 12, 19),
            last: d(2027, 1, 3),
        }],
    });
    let unit = school_days();
    assert_eq!(unit.check(d(2026, 12, 7), &calendar), Ok(()));
    assert_eq!(
        unit.check(d(2026, 12, 9), &calendar),
        Err(ClosedReason::ClosedWeekday(Weekday::Wed))
    );
    // Ascension Thursday 2027.
    assert_eq!(
        unit.check(d(2027, 5, 6), &calendar),
        Err(ClosedReason::PublicHoliday)
    );
    assert_eq!(
        unit.check(d(2026, 12, 21), &calendar),
        Err(ClosedReason::SchoolHolidays)
    );
}

#[test]
fn a_holiday_unit_is_closed_during_term() {
    let calendar = SchoolCalendar::typed(TypedCalendar {
        public_holidays: BTreeSet::new(),
        school_holidays: vec![DateRange {
            first: d(2026, 12, 19),
            last: d(2027, 1, 3),
        }],
    });
    let unit = OpeningDays {
        weekdays: vec![Weekday::Mon, Weekday::Tue],
        during: OpenDuring::SchoolHolidays,
    };
    assert_eq!(unit.check(d(2026, 12, 21), &calendar), Ok(()));
    assert_eq!(
        unit.check(d(2026, 12, 14), &calendar),
        Err(ClosedReason::SchoolTerm)
    );
}

#[test]
fn the_school_year_turns_on_the_first_of_september() {
    assert_eq!(SchoolYear::of(d(2026, 8, 31)), SchoolYear(2025));
    assert_eq!(SchoolYear::of(d(2026, 9, 1)), SchoolYear(2026));
}

#[test]
fn the_label_of_any_stored_year_is_written_without_overflow() {
    assert_eq!(SchoolYear(2026).to_string(), "2026-2027");
    assert_eq!(SchoolYear(i32::MAX).to_string(), "2147483647-2147483648");
}

#[test]
fn easter_falls_on_its_known_sundays() {
    for (year, month, day) in [
        (2019, 4, 21),
        (2024, 3, 31),
        (2025, 4, 20),
        (2026, 4, 5),
        (2027, 3, 28),
        (2028, 4, 16),
        (2030, 4, 21),
        (2038, 4, 25),
    ] {
        assert_eq!(easter(year), d(year, month, day), "{year}");
    }
}

#[test]
fn public_holidays_follow_easter_and_alsace_moselle_has_two_more() {
    let days =
        |year, alsace| -> Vec<NaiveDate> { public_holidays(year, alsace).iter().map(|h| h.date).collect() };
    let twenty_six = days(2026, false);
    assert_eq!(twenty_six.len(), 11);
    for day in [
        d(2026, 4, 6),
        d(2026, 5, 14),
        d(2026, 5, 25),
        d(2026, 7, 14),
        d(2026, 11, 11),
    ] {
        assert!(twenty_six.contains(&day), "{day}");
    }
    let twenty_seven = public_holidays(2027, false);
    let named = |name: &str| twenty_seven.iter().find(|h| h.name == name).map(|h| h.date);
    assert_eq!(named("Lundi de Pâques"), Some(d(2027, 3, 29)));
    assert_eq!(named("Ascension"), Some(d(2027, 5, 6)));
    assert_eq!(named("Lundi de Pentecôte"), Some(d(2027, 5, 17)));
    assert_eq!(named("Vendredi saint"), None);
    let alsace = days(2027, true);
    assert_eq!(alsace.len(), 13);
    assert!(alsace.contains(&d(2027, 3, 26)) && alsace.contains(&d(2027, 12, 26)));
    assert!(alsace.windows(2).all(|w| w[0] < w[1]), "in date order");
}

#[test]
fn a_school_years_public_holidays_run_from_september_to_august() {
    let days: Vec<NaiveDate> = public_holidays_of(SchoolYear(2026), false)
        .iter()
        .map(|h| h.date)
        .collect();
    assert_eq!(days.first(), Some(&d(2026, 11, 1)));
    assert_eq!(days.last(), Some(&d(2027, 8, 15)));
    assert!(!days.contains(&d(2026, 7, 14)) && days.contains(&d(2027, 7, 14)));
    assert_eq!(days.len(), 11);
}

#[test]
fn the_official_holidays_of_each_zone_come_from_the_shipped_data() {
    let c = school_holidays(Zone::C, SchoolYear(2026)).unwrap();
    let named = |periods: &[NamedRange], name: &str| {
        periods
            .iter()
            .find(|p| p.name == name)
            .map(|p| (p.range.first, p.range.last))
    };
    assert_eq!(
        named(&c, "Vacances d'hiver"),
        Some((d(2027, 2, 6), d(2027, 2, 21)))
    );
    assert_eq!(
        named(&c, "Vacances de printemps"),
        Some((d(2027, 4, 3), d(2027, 4, 18)))
    );
    assert_eq!(
        named(&c, "Vacances de la Toussaint"),
        Some((d(2026, 10, 17), d(2026, 11, 1)))
    );
    assert_eq!(named(&c, "Vacances d'été"), Some((d(2027, 7, 3), d(2027, 8, 31))));
    let a = school_holidays(Zone::A, SchoolYear(2026)).unwrap();
    assert_eq!(
        named(&a, "Vacances d'hiver"),
        Some((d(2027, 2, 13), d(2027, 2, 28)))
    );
    // Christmas straddles the new year; each period is within the year.
    let (first, last) = SchoolYear(2026).bounds();
    assert!(c.iter().all(|p| first <= p.range.first && p.range.last <= last));
    assert_eq!(
        named(&c, "Vacances de Noël"),
        Some((d(2026, 12, 19), d(2027, 1, 3)))
    );
    assert!(school_holidays(Zone::C, SchoolYear(2028)).is_none());
    assert!(school_holidays(Zone::B, SchoolYear(2023)).is_none());
    assert_eq!("c".parse::<Zone>(), Ok(Zone::C));
    assert!("D".parse::<Zone>().is_err());
}

#[test]
fn a_malformed_holidays_file_is_refused_with_its_line() {
    assert!(
        super::official::parse_for_tests("zone,premier,dernier,nom\nC,2027-02-21,2027-02-06,Hiver\n")
            .unwrap_err()
            .contains("line 1")
    );
    assert!(
        super::official::parse_for_tests("zone,premier,dernier,nom\nD,2027-02-06,2027-02-21,Hiver\n")
            .is_err()
    );
}

/// The zone C calendar of 2026-2027, as a commune of Seine-et-Marne
/// publishes it.
fn zone_c_2026() -> SchoolCalendar {
    let year = SchoolYear(2026);
    let mut calendar = SchoolCalendar::default();
    calendar.years.insert(
        year,
        PublishedYear {
            zone: Zone::C,
            public_holidays: public_holidays_of(year, false),
            school_holidays: school_holidays(Zone::C, year).unwrap(),
        },
    );
    calendar
}

#[test]
fn deadlines_on_real_dates_across_both_changes_of_summer_time_weekends_and_public_holidays() {
    let calendar = zone_c_2026();
    let j = |days, h, skip_weekends, skip_holidays| DeadlineRule::DaysBefore {
        days,
        at: t(h, 0),
        skip_weekends,
        skip_holidays,
    };
    let rows = [
        // J-2 at noon, weekends and holidays not counted: Monday 7 December
        // closes on Thursday 3 (Friday 4 is the first day counted).
        (j(2, 12, true, true), d(2026, 12, 7), "2026-12-03T11:00:00Z"),
        // Thursday 12 November: Wednesday 11, Armistice, is not counted.
        (j(2, 12, true, true), d(2026, 11, 12), "2026-11-09T11:00:00Z"),
        // The same rule counting holidays: Tuesday 10.
        (j(2, 12, true, false), d(2026, 11, 12), "2026-11-10T11:00:00Z"),
        // Counting weekends, the deadline may fall on a Saturday.
        (j(2, 12, false, false), d(2026, 12, 7), "2026-12-05T11:00:00Z"),
        // Autumn: summer time ends on Sunday 25 October 2026. Tuesday 27's
        // J-2 is Friday 23, still summer time (UTC+2).
        (j(2, 10, true, true), d(2026, 10, 27), "2026-10-23T08:00:00Z"),
        // J-1 of the same Tuesday is Monday 26, winter time (UTC+1).
        (j(1, 10, true, true), d(2026, 10, 27), "2026-10-26T09:00:00Z"),
        // Spring: summer time starts on Sunday 28 March 2027; Easter Monday
        // 29 is not counted. Wednesday 31: Tuesday 30, then Friday 26
        // (winter time).
        (j(2, 12, true, true), d(2027, 3, 31), "2027-03-26T11:00:00Z"),
        // Thursday 1 April: Wednesday 31, Tuesday 30 (summer time).
        (j(2, 12, true, true), d(2027, 4, 1), "2027-03-30T10:00:00Z"),
        // Thursday of the previous week at 9:00, on either side of the change.
        (
            DeadlineRule::WeekdayOfPreviousWeek {
                weekday: Weekday::Thu,
                at: t(9, 0),
            },
            d(2027, 3, 29),
            "2027-03-25T08:00:00Z",
        ),
        (
            DeadlineRule::WeekdayOfPreviousWeek {
                weekday: Weekday::Thu,
                at: t(9, 0),
            },
            d(2027, 4, 5),
            "2027-04-01T07:00:00Z",
        ),
        // The 20th of the previous month at 18:00; the 31st of a February.
        (
            DeadlineRule::DayOfPreviousMonth {
                day: 20,
                at: t(18, 0),
            },
            d(2027, 3, 15),
            "2027-02-20T17:00:00Z",
        ),
        (
            DeadlineRule::DayOfPreviousMonth {
                day: 31,
                at: t(18, 0),
            },
            d(2027, 3, 2),
            "2027-02-28T17:00:00Z",
        ),
        (
            DeadlineRule::DayOfPreviousMonth {
                day: 20,
                at: t(18, 0),
            },
            d(2026, 11, 5),
            "2026-10-20T16:00:00Z",
        ),
    ];
    for (rule, slot, expected) in rows {
        assert_eq!(
            rule.deadline_for(slot, &calendar),
            utc(expected),
            "{rule:?} for {slot}"
        );
    }
}
