"""Checks schemathesis runs on every answer of the GraphQL fuzz run.

A GraphQL server answers most failures with HTTP 200 and an error in the
body, so schemathesis's own "not a server error" check cannot see them: an
`INTERNAL` or `UNAVAILABLE` code, or an error without a code, fails here.

Error codes that refuse the input (VALIDATION, FORBIDDEN, NOT_FOUND...) are
the point of the run, not failures: the fuzzer sends mostly invalid input
on purpose. Its dates come from any year, so the bounds are tried too.
"""

import datetime

from hypothesis import strategies as st

import schemathesis
from schemathesis.graphql import nodes

# The demo's ids (README, "The demo commune"), so that the fuzzer reaches
# past NOT_FOUND: the commune, its services and units, the family and its
# children (two draws in three); random ids for the rest.
DEMO_IDS = [f"7a1d0000-0000-4000-8000-0000000000{n:02d}" for n in (1, 2, 3, 4, 5, 10, 11, 12)]
schemathesis.graphql.scalar(
    "UUID",
    st.one_of(st.sampled_from(DEMO_IDS), st.sampled_from(DEMO_IDS), st.uuids().map(str)).map(nodes.String),
)
# Mostly the coming school months (bookable days), then any day of any
# year, then text that is no date at all.
today = datetime.date.today()
schemathesis.graphql.scalar(
    "NaiveDate",
    st.one_of(
        st.dates(min_value=today, max_value=today + datetime.timedelta(days=120)).map(lambda d: d.isoformat()),
        st.dates().map(lambda d: d.isoformat()),
        st.text(max_size=12),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.datetimes().map(lambda t: t.isoformat() + "Z").map(nodes.String),
)
# A file is sent only in a multipart request; in a JSON one, any value
# for an `Upload` must be refused with a code.
schemathesis.graphql.scalar(
    "Upload",
    st.sampled_from(["0", "file", ""]).map(nodes.String),
)
schemathesis.graphql.scalar(
    "JSON",
    st.just("{}").map(nodes.String),
)


@schemathesis.check
def no_internal_error(ctx, response, case):
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"the answer is not JSON (HTTP {response.status_code})")
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code is None:
            raise AssertionError(f"an error without a code: {error}")
        if code in ("INTERNAL", "UNAVAILABLE"):
            raise AssertionError(f"{code}: {error.get('message')}")
