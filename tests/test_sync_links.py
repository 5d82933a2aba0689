"""A link's state as enums: the values are the strings state stores already hold, so a
link written before them is read the same, and JSON shows the same words."""

import json

from dossiersync.journal import Action
from dossiersync.state.models import Link
from dossiersync.sync.links import Kept, LinkLabel, kept_in_sage, mark


def test_review_links_stored_as_text_are_still_kept_in_sage() -> None:
    created_in_sage = Link(
        label="pending_review",
        last_error="deleted in Sales Management; kept in Sage 50FR where it was created",
    )
    written_to_sage = Link(
        label="pending_review", last_error="deleted in Sales Management; kept in Sage 50FR"
    )
    refused_deletion = Link(
        label="pending_review", last_error="vanished from Sage with many others; deletion refused"
    )
    in_error = Link(label="error", last_error=Kept.IN_SAGE)
    assert kept_in_sage(created_in_sage)
    assert kept_in_sage(written_to_sage)
    assert not kept_in_sage(refused_deletion)
    assert not kept_in_sage(in_error)


def test_mark_sets_label_note_and_time_and_a_synced_link_has_no_note() -> None:
    link = Link(label="pending", last_error="waiting for account C1")
    mark(link, LinkLabel.SYNCED)
    assert (link.label, link.last_error) == ("synced", None)
    assert link.updated_at is not None
    mark(link, LinkLabel.PENDING_REVIEW, Kept.IN_SSM)
    assert link.last_error == "deleted in Sage 50FR; kept in Sales Management where it was created"


def test_enums_serialise_as_the_stored_words() -> None:
    shown = json.dumps({"label": LinkLabel.PENDING_REVIEW, "action": Action.KEPT})
    assert shown == '{"label": "pending_review", "action": "kept"}'
