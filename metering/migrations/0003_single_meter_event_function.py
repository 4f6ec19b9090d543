from django.db import migrations

# One meter event from the v1 API in one round trip (PostgreSQL only; `metering.ingest` calls
# it): the API key, the meter, the customer with its test clock's time, and the write, with the
# same rules as the batch path. Python checks beforehand what needs no database (the payload's
# shape, which payload values are numbers, the identifier) and passes the results in; nothing is
# written unless every rule passes. On a refusal the function returns what it found (the meter,
# the customer) and `metering.validation` names the reason, so every message has one home.
#
# Outcomes: key_invalid (no live key with that hash), key_forbidden (a restricted key without
# write on the resource, as `key_permissions.allows`), rejected (some rule failed; nothing was
# written), duplicate (the identifier was claimed before), accepted. The claim, the event and its
# rollup are written in that order, the order the batch statement locks them in.
FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION metering_meter_event_record(
    key_hash text, key_resource text, last_used_resolution interval, now_ timestamptz,
    event_name_ text, payload_ jsonb, values_ jsonb, identifier_ text, timestamp_ timestamptz,
    window_past interval, window_future interval
) RETURNS TABLE (
    o_outcome text, o_key_id bigint, o_key_name text, o_key_prefix text,
    o_key_permissions jsonb, o_key_last_used timestamptz, o_meter_id bigint,
    o_meter_public_id text, o_meter_display_name text, o_meter_formula text,
    o_meter_customer_key text, o_meter_value_key text, o_meter_status text,
    o_customer_id bigint, o_clock_time timestamptz, o_event_value numeric,
    o_event_timestamp timestamptz, o_received_at timestamptz
) LANGUAGE plpgsql AS $fn$
DECLARE
    k record;
    m record;
    c record;
    customer_ref text;
    new_event_id bigint;
BEGIN
    o_outcome := 'rejected';
    SELECT id, name, secret_prefix, permissions, last_used_at INTO k
    FROM billing_site_apikey WHERE secret_hash = key_hash AND revoked_at IS NULL;
    IF NOT FOUND THEN
        o_outcome := 'key_invalid';
        RETURN NEXT;
        RETURN;
    END IF;
    o_key_id := k.id; o_key_name := k.name; o_key_prefix := k.secret_prefix;
    o_key_permissions := k.permissions; o_key_last_used := k.last_used_at;
    IF k.last_used_at IS NULL OR now_ - k.last_used_at > last_used_resolution THEN
        UPDATE billing_site_apikey SET last_used_at = now_ WHERE id = k.id;
        o_key_last_used := now_;
    END IF;
    IF k.permissions IS NOT NULL AND jsonb_typeof(k.permissions) <> 'null'
            AND coalesce(k.permissions ->> key_resource, 'none') <> 'write' THEN
        o_outcome := 'key_forbidden';
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT id, public_id, display_name, formula, customer_payload_key, value_payload_key, status
    INTO m FROM metering_meter WHERE event_name = event_name_;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;
    o_meter_id := m.id; o_meter_public_id := m.public_id;
    o_meter_display_name := m.display_name;
    o_meter_formula := m.formula; o_meter_customer_key := m.customer_payload_key;
    o_meter_value_key := m.value_payload_key; o_meter_status := m.status;
    customer_ref := payload_ ->> m.customer_payload_key;
    IF customer_ref IS NOT NULL AND customer_ref <> '' THEN
        SELECT cu.id, clock.frozen_time INTO c
        FROM invoicing_customer cu LEFT JOIN invoicing_testclock clock
            ON clock.id = cu.test_clock_id
        WHERE cu.public_id = customer_ref AND cu.deleted_at IS NULL;
        IF FOUND THEN
            o_customer_id := c.id;
            o_clock_time := c.frozen_time;
        END IF;
    END IF;
    IF m.status <> 'active' OR payload_ IS NULL OR o_customer_id IS NULL
            OR identifier_ IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    IF payload_ ? m.value_payload_key THEN
        o_event_value := (values_ ->> m.value_payload_key)::numeric;
    ELSIF m.formula = 'count' THEN
        o_event_value := 1;
    END IF;
    o_received_at := coalesce(c.frozen_time, now_);
    o_event_timestamp := coalesce(timestamp_, o_received_at);
    IF o_event_value IS NULL OR o_event_timestamp < o_received_at - window_past
            OR o_event_timestamp > o_received_at + window_future THEN
        RETURN NEXT;
        RETURN;
    END IF;

    INSERT INTO metering_metereventidentifier
        (meter_id, identifier, customer_id, event_timestamp, received_at)
    VALUES (m.id, identifier_, c.id, o_event_timestamp, o_received_at)
    ON CONFLICT (meter_id, identifier) DO NOTHING;
    IF NOT FOUND THEN
        o_outcome := 'duplicate';
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO metering_meterevent
        (meter_id, customer_id, identifier, value, "timestamp", received_at, payload)
    VALUES (m.id, c.id, identifier_, o_event_value, o_event_timestamp, o_received_at, payload_)
    RETURNING id INTO new_event_id;
    INSERT INTO metering_meterusagerollup AS r
        (meter_id, customer_id, hour, value_sum, event_count, last_value, last_timestamp,
         last_event_id)
    VALUES (m.id, c.id, date_trunc('hour', o_event_timestamp, 'UTC'), o_event_value, 1,
        o_event_value, o_event_timestamp, new_event_id)
    ON CONFLICT (meter_id, customer_id, hour) DO UPDATE SET
        value_sum = r.value_sum + excluded.value_sum,
        event_count = r.event_count + excluded.event_count,
        last_value = CASE WHEN (excluded.last_timestamp, excluded.last_event_id)
            > (r.last_timestamp, r.last_event_id) OR r.last_timestamp IS NULL
            THEN excluded.last_value ELSE r.last_value END,
        last_timestamp = GREATEST(r.last_timestamp, excluded.last_timestamp),
        last_event_id = CASE WHEN (excluded.last_timestamp, excluded.last_event_id)
            > (r.last_timestamp, r.last_event_id) OR r.last_timestamp IS NULL
            THEN excluded.last_event_id ELSE r.last_event_id END;
    o_outcome := 'accepted';
    RETURN NEXT;
END
$fn$;
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION_SQL, params=None)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS metering_meter_event_record("
            "text, text, interval, timestamptz, text, jsonb, jsonb, text, timestamptz, "
            "interval, interval)",
            params=None,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing_site", "0001_squashed_0003_api_keys_events_and_webhooks"),
        ("invoicing", "0001_squashed_0005_customers_subscriptions_invoices_and_portal"),
        ("metering", "0002_squashed_0004_meter_events_identifiers_rollups_sessions"),
    ]

    operations = [migrations.RunPython(create_function, drop_function)]
