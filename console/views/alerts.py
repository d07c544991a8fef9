"""Alerts: the caller's channels (with the test send and the delivery log) and maintenance windows,
through services.alerts exactly as the API's /channels, /notifications and /maintenance."""

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from console.auth import current_user, login_required, safe_next
from console.forms import ChannelBody, ChannelForm, MaintenanceBody, MaintenanceForm, apply_errors, as_ids
from console.views import bp
from console.views.pages import _page_arg as page_arg
from services import sites, users
from services.alerts import channels, maintenance, outbox
from services.errors import Forbidden, Invalid
from services.extensions import db
from services.models import NOTIFICATION_STATUSES, Site, User
from services.paging import paginate

PER_PAGE = 25
LOG_PER_PAGE = 50
MAX_CHOICES = 500


def _site_names(user: User, site_ids) -> dict[int, str]:
    """{id: name} of those of `site_ids` the user may see (one query)."""
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    return {site.id: site.name for site in db.session.scalars(sites.list_sites(user).where(Site.id.in_(ids)))}


def _site_choices(user: User, keep=(), writable: bool = False) -> list[Site]:
    """The sites a form offers `user`: every one they can see (with `writable`, change), plus those of
    `keep` among them (already chosen, beyond the first MAX_CHOICES)."""
    offered = db.session.scalars(sites.list_sites(user).limit(MAX_CHOICES)).all()
    missing = set(keep) - {site.id for site in offered}
    if missing:
        offered += db.session.scalars(sites.list_sites(user).where(Site.id.in_(sorted(missing)))).all()
    return [site for site in offered if not writable or site.id in keep or sites.can_write(user, site)]


def _chosen_ids() -> set[int]:
    return as_ids(request.form.getlist("site_ids"))


# --- channels ----------------------------------------------------------------------------------------


@bp.get("/channels", endpoint="channels")
@login_required
def channels_list():
    user = current_user()
    result = paginate(channels.list_channels(user), {"page": page_arg(), "per_page": PER_PAGE})
    listed = result["items"]
    owners = {}
    if user.is_admin:  # admins see everybody's: say whose
        owner_ids = {channel.owner_id for channel in listed}
        owners = {
            person.id: person.username
            for person in db.session.scalars(users.list_users().where(User.id.in_(owner_ids)))
        }
    return render_template(
        "console/channels.html",
        result=result,
        latest=outbox.latest_notifications([channel.id for channel in listed]),
        owners=owners,
    )


def _channel_owner(user: User, channel) -> User:
    """Whose sites a channel may carry: its owner's (an admin edits other people's channels too)."""
    return user if channel is None or channel.owner_id == user.id else users.get_user(channel.owner_id)


def _render_channel_form(form, channel, chosen, status=200):
    owner = _channel_owner(current_user(), channel)
    return (
        render_template(
            "console/channel_form.html",
            form=form,
            channel=channel,
            choices=_site_choices(owner, keep=chosen),
            chosen=chosen,
        ),
        status,
    )


def _channel_body(form) -> dict | None:
    try:
        return ChannelBody().load(form.body(request.form))
    except ValidationError as exc:
        apply_errors(form, exc.messages)
        return None


@bp.route("/channels/new", methods=["GET", "POST"])
@login_required
def channel_new():
    form = ChannelForm()  # any role may own channels (about the sites it can see)
    if request.method == "GET":
        return _render_channel_form(form, None, set())
    data = _channel_body(form)
    if data is not None:
        try:
            created = channels.create_channel(current_user(), data)
        except Invalid as exc:
            db.session.rollback()
            apply_errors(form, exc.errors or {"_schema": [exc.message]})
        else:
            flash(_("Channel %(name)s created: send it a test message.", name=created.name), "success")
            return redirect(url_for("console.channel", channel_id=created.id))
    return _render_channel_form(form, None, _chosen_ids(), 422)


@bp.route("/channels/<id:channel_id>/edit", methods=["GET", "POST"])
@login_required
def channel_edit(channel_id):
    user = current_user()
    channel = channels.get_channel(user, channel_id)
    form = ChannelForm()
    if request.method == "GET":
        form.fill(channel, channels.masked_url(channel))
        return _render_channel_form(form, channel, set(channel.site_ids or ()))
    data = _channel_body(form)
    if data is not None:
        try:
            channels.update_channel(user, channel_id, data)
        except Invalid as exc:
            db.session.rollback()
            apply_errors(form, exc.errors or {"_schema": [exc.message]})
        else:
            flash(_("Channel saved."), "success")
            return redirect(url_for("console.channel", channel_id=channel_id))
    return _render_channel_form(form, channels.get_channel(user, channel_id), _chosen_ids(), 422)


@bp.get("/channels/<id:channel_id>")
@login_required
def channel(channel_id):
    """A channel's settings and its delivery log (newest first, filtered by status)."""
    user = current_user()
    found = channels.get_channel(user, channel_id)
    status = request.args.get("status")
    status = status if status in NOTIFICATION_STATUSES else None
    log = paginate(
        outbox.list_notifications(user, channel_id=channel_id, status=status),
        {"page": page_arg(), "per_page": LOG_PER_PAGE},
    )
    owner = None if found.owner_id == user.id else users.get_user(found.owner_id)
    return render_template(
        "console/channel.html",
        channel=found,
        owner=owner,
        site_names=_site_names(user, found.site_ids or ()),
        log=log,
        status=status,
        statuses=NOTIFICATION_STATUSES,
    )


@bp.post("/channels/<id:channel_id>/test")
@login_required
def channel_test(channel_id):
    """Send a `test` message now and say how it went (POST /channels/{id}/test)."""
    outcome = channels.send_test(current_user(), channel_id)
    if outcome["delivered"]:
        flash(_("Test message delivered in %(ms)s ms.", ms=round(outcome["duration_ms"])), "success")
    else:
        flash(_("The test message was not delivered: %(error)s", error=outcome["error"]), "error")
    return redirect(safe_next(request.form.get("next"), url_for("console.channel", channel_id=channel_id)))


@bp.post("/channels/<id:channel_id>/delete")
@login_required
def channel_delete(channel_id):
    channels.delete_channel(current_user(), channel_id)
    flash(_("Channel deleted, with its delivery log."), "success")
    return redirect(url_for("console.channels"))


# --- maintenance windows -----------------------------------------------------------------------------


@bp.get("/maintenance", endpoint="maintenance")
@login_required
def maintenance_list():
    user = current_user()
    result = paginate(maintenance.list_windows(user), {"page": page_arg(), "per_page": PER_PAGE})
    now = datetime.now(UTC)
    rows = [
        {
            "window": window,
            "now": maintenance.occurrence_at(window, now),
            "next": maintenance.next_start(window, now),
        }
        for window in result["items"]
    ]
    names = _site_names(user, [site_id for window in result["items"] for site_id in window.site_ids])
    return render_template("console/maintenance.html", result=result, rows=rows, site_names=names)


def _render_window_form(form, window, chosen, status=200):
    """The form with the sites the user may change (and those already in the window) to choose from."""
    choices = _site_choices(current_user(), keep=window.site_ids if window else (), writable=True)
    return (
        render_template(
            "console/maintenance_form.html", form=form, window=window, choices=choices, chosen=chosen
        ),
        status,
    )


def _save_window(form, window_id=None):
    """Create or change a window from the posted form: a redirect, or the form again with the messages
    (422; 403 when a chosen site may be read but not changed)."""
    user = current_user()
    current = maintenance.get_window(user, window_id) if window_id else None
    status = 422
    try:
        data = MaintenanceBody().load(form.body(request.form, current))
    except ValidationError as exc:
        apply_errors(form, exc.messages)
    else:
        try:
            if current is None:
                saved = maintenance.create_window(user, data)
            else:
                saved = maintenance.update_window(user, window_id, data)
        except Invalid as exc:
            db.session.rollback()
            apply_errors(form, exc.errors or {"_schema": [exc.message]})
        except Forbidden as exc:  # a viewer, or a site the user may read but not change
            db.session.rollback()
            apply_errors(form, {"_schema": [exc.message]})
            status = 403
        else:
            flash(_("Maintenance window %(title)s saved.", title=saved.title), "success")
            return redirect(url_for("console.maintenance"))
    window = maintenance.get_window(user, window_id) if window_id else None
    return _render_window_form(form, window, _chosen_ids(), status)


@bp.route("/maintenance/new", methods=["GET", "POST"])
@login_required
def maintenance_new():
    if current_user().role not in sites.WRITE_ROLES:
        abort(403, description=_("Viewers cannot create maintenance windows."))
    form = MaintenanceForm()
    if request.method == "POST":
        return _save_window(form)
    preset = request.args.get("site_id", "")  # "Schedule maintenance" on a site's page
    return _render_window_form(form, None, as_ids([preset]))


@bp.route("/maintenance/<id:window_id>/edit", methods=["GET", "POST"])
@login_required
def maintenance_edit(window_id):
    window = maintenance.get_window(current_user(), window_id)
    form = MaintenanceForm()
    if request.method == "POST":
        return _save_window(form, window_id)
    form.fill(window)
    return _render_window_form(form, window, set(window.site_ids))


@bp.post("/maintenance/<id:window_id>/delete")
@login_required
def maintenance_delete(window_id):
    maintenance.delete_window(current_user(), window_id)
    flash(_("Maintenance window deleted."), "success")
    return redirect(url_for("console.maintenance"))
