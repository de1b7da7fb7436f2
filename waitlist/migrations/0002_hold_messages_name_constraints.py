"""The hold triggers name their constraint in the message too, as PostgreSQL's own violations
do ('... violates exclusion constraint "<name>"'): on Citus a violation raised on a worker
reaches the application without its diagnostics, and `clinic.errors.constraint_name` reads the
name from the message (the booking service's 409 for a held slot depends on it)."""

from django.db import migrations

HOLD_FUNCTIONS = """
CREATE OR REPLACE FUNCTION public.waitlist_hold_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    held_until timestamptz;
BEGIN
    IF NEW.status NOT IN ('booked', 'checked_in', 'completed') OR NEW.overbooked THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status AND OLD.blocked = NEW.blocked
       AND OLD.practitioner_id = NEW.practitioner_id AND OLD.overbooked = NEW.overbooked THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT 1 FROM %I.practice_practitioner WHERE id = $1 FOR NO KEY UPDATE',
                   TG_TABLE_SCHEMA) USING NEW.practitioner_id;
    -- A hold binds writers until its expiry by their own clock (the row's updated_at, which
    -- the application stamps): past it the slot is free, whether or not the expiry task ran.
    EXECUTE format('SELECT expires_at FROM %I.waitlist_waitlistoffer WHERE status = ''held'' '
                   'AND practitioner_id = $1 AND blocked && $2 AND patient_id <> $3 '
                   'AND expires_at > $4 ORDER BY expires_at DESC LIMIT 1', TG_TABLE_SCHEMA)
        INTO held_until USING NEW.practitioner_id, NEW.blocked, NEW.patient_id, NEW.updated_at;
    IF held_until IS NOT NULL THEN
        RAISE EXCEPTION 'This time is held for a patient on the waitlist: the row violates '
                        'exclusion constraint "appointment_no_overlap_held"'
            USING ERRCODE = 'exclusion_violation', CONSTRAINT = 'appointment_no_overlap_held',
                  DETAIL = extract(epoch FROM held_until)::text;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION public.waitlist_offer_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    visit bigint;
BEGIN
    IF NEW.status <> 'held' OR (TG_OP = 'UPDATE' AND OLD.status = 'held') THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT 1 FROM %I.practice_practitioner WHERE id = $1 FOR NO KEY UPDATE',
                   TG_TABLE_SCHEMA) USING NEW.practitioner_id;
    EXECUTE format('SELECT id FROM %I.scheduling_appointment WHERE practitioner_id = $1 '
                   'AND status IN (''booked'', ''checked_in'', ''completed'') '
                   'AND NOT overbooked AND blocked && $2 LIMIT 1', TG_TABLE_SCHEMA)
        INTO visit USING NEW.practitioner_id, NEW.blocked;
    IF visit IS NOT NULL THEN
        RAISE EXCEPTION 'A hold cannot cover visit %: the slot is taken; the row violates '
                        'exclusion constraint "waitlist_offer_over_visit"', visit
            USING ERRCODE = 'exclusion_violation', CONSTRAINT = 'waitlist_offer_over_visit';
    END IF;
    RETURN NEW;
END
$$;
"""



class Migration(migrations.Migration):
    dependencies = [("waitlist", "0001_initial")]

    operations = [migrations.RunSQL(HOLD_FUNCTIONS, reverse_sql=migrations.RunSQL.noop)]
