"""The event bus: every state change becomes a Stripe-shaped event, delivered by webhooks.

`recording.record_event` writes the event in the transaction of the change (a transactional
outbox); `delivery` sends it, signed (`signing`), to every enabled endpoint that listens for its
type, after commit, and retries; `endpoints` manages the endpoints; `api` serves `/v1/events`
and `/v1/webhook_endpoints`. Side effects of a change (webhooks today, email tomorrow) hang from
here, never from the services that made the change.
"""
