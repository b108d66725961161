"""The control plane's in-process port, as the media plane's tools use it."""

from tests.conftest import AUTH, make_tenant


def test_a_booking_made_in_a_call_is_kept(client):
    t = make_tenant(client)
    port = client.app.state.port
    booking_id = client.portal.call(port.create_booking, t["id"], "call_1", "Tuesday 3pm", "Ana")
    listed = client.get(f"/v1/tenants/{t['id']}/bookings", headers=AUTH).json()["items"]
    assert [(b["id"], b["when"], b["name"]) for b in listed] == [(booking_id, "Tuesday 3pm", "Ana")]
