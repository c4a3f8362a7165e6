import Foundation

/// A batch of journal writes in one round trip to PostgreSQL: `journal_apply(jsonb)`, a PL/pgSQL function the
/// schema holds, applies the writes in order in one transaction and returns what each did.
///
/// Why: a statement is a round trip (about 0.2–0.4 ms through postgres-nio here), and a storm's alarm costs
/// about ten of them (the alarm, its case and first update, then the engagement, the close and the device's
/// acknowledgements of each update); at 2,000 alarms a second one connection cannot make them one by one
/// (measured: 200 alarms a second, p50 7.8 s). In the server a statement costs tens of microseconds.
///
/// The function is the same rules as `CenterJournal`'s statements (its SQL for SQLite), written a second time
/// in PL/pgSQL: the journal's suites run every test on both databases, so the two are held to the same
/// outcomes. It takes the batch's devices' locks in ascending order first, as `write(locking:)` does. Writes it
/// does not take (events from the DC-09 port) make the batch go statement by statement instead.
///
/// With `--forward`, each message write carries the DC-09 code it is queued with if it is new (the table is
/// Swift's, `DC09EventCodes`); a cancel carries the zone of each alarm kind, since its zone is its alarm's,
/// read from the journal in the function.
enum PostgresJournalBatch {
    /// Whether `journal_apply` takes `write`.
    static func applies(_ write: CenterJournal.Write) -> Bool {
        switch write {
        case .anchor, .message, .caseUpdate, .caseUpdateDelivered, .supervision, .forwarded: return true
        case .dc09Event: return false
        }
    }

    /// The zone a cancel of an alarm of each kind is forwarded with, by the kind's name in the alarm's
    /// recorded JSON (a kind this version does not name is recorded as its number, and goes as the button).
    private static let cancelZones: String = {
        var zones = JSONObjectText()
        for kind in AlarmKind.allKnown { zones.add(key: kind.description, DC09EventCodes.cancel(kind).zone) }
        return zones.json
    }()

    private static func forwardObject(_ code: DC09EventCode) -> String {
        var object = JSONObjectText()
        object.add("sia", code.sia)
        object.add("q", code.qualifier)
        object.add("cid", code.contactID)
        object.add("zone", code.zone)
        object.add("meaning", code.meaning)
        return object.json
    }

    /// The batch as `journal_apply` reads it: one object per write; `node` (the journal's) owns the cases
    /// the batch opens and is the only one whose cases it changes (CenterJournal+Lease.swift); with
    /// `forwards`, new case events are queued for the DC-09 receivers (CenterJournal+DC09Forward.swift).
    static func encode(_ writes: [CenterJournal.Write], node: String? = nil, forwards: Bool = false) throws -> String {
        var batch = "["
        for (index, write) in writes.enumerated() {
            if index > 0 { batch += "," }
            var object = JSONObjectText()
            switch write {
            case .anchor(let device, let anchor, let epoch):
                object.add("k", "anchor")
                object.add("d", Int64(device))
                object.add("anchor", Int64(clamping: anchor))
                object.add("epoch", Int64(epoch))
            case .message(let device, let message, let at, let opensCase, let note):
                guard let id = message.reliableID else {
                    object.add("k", "none")
                    break
                }
                object.add("k", "message")
                object.add("d", Int64(device))
                object.add("id", Int64(id))
                object.add("kind", message.kind.name)
                object.add("json", message.json)
                object.add("at", Int64(clamping: at))
                object.add("digest", hex(message.identityDigest))
                object.add("open", opensCase)
                if case .alarmCancel(let cancel) = message { object.add("ref", Int64(cancel.alarmID)) }
                if let note { object.add("note", note) }
                if forwards {
                    switch message {
                    case .alarm(let alarm): object.add("fwd", json: forwardObject(DC09EventCodes.alarm(alarm.kind)))
                    case .alarmCancel:
                        object.add("fwd", json: forwardObject(DC09EventCodes.cancel(.button)))
                        object.add("zones", json: cancelZones)
                    case .event(let event): if let code = DC09EventCodes.event(event.kind) { object.add("fwd", json: forwardObject(code)) }
                    default: break
                    }
                }
            case .caseUpdate(let changed, let at):
                object.add("k", "case")
                object.add("d", Int64(changed.device))
                object.add("case", changed.id)
                object.add("state", Int64(changed.state.rawValue))
                object.add("at", Int64(clamping: at))
            case .caseUpdateDelivered(let id, let at):
                object.add("k", "delivered")
                object.add("update", Int64(id))
                object.add("at", Int64(clamping: at))
            case .supervision(let device, let online, let at, let anchor):
                object.add("k", "supervision")
                object.add("d", Int64(device))
                object.add("online", online ? 1 : 0)
                object.add("at", Int64(clamping: at))
                if let anchor { object.add("anchor", Int64(clamping: anchor)) }
            case .forwarded(let rows):
                object.add("k", "forwarded")
                object.add("rows", rows)
            case .dc09Event:
                throw JournalReadError(column: "journal_apply", found: "a write it does not take")
            }
            // Every write that a node's fencing or supervision reads says which node wrote it.
            switch write {
            case .anchor, .message, .caseUpdate, .supervision: if let node { object.add("owner", node) }
            default: break
            }
            batch += object.json
        }
        return batch + "]"
    }

    /// What `journal_apply` returned, as the outcomes `CenterJournal.commit` returns.
    static func decode(_ text: String, writes: [CenterJournal.Write]) throws -> [CenterJournal.WriteOutcome] {
        guard let results = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], results.count == writes.count else {
            throw JournalReadError(column: "journal_apply", found: "not one result per write")
        }
        func int(_ value: Any?) -> Int64? { (value as? NSNumber)?.int64Value }
        func pair(_ value: Any?) -> (Int64, Int64)? {
            guard let array = value as? [Any], array.count == 2, let a = int(array[0]), let b = int(array[1]) else { return nil }
            return (a, b)
        }
        return try zip(writes, results).map { write, result in
            switch write {
            case .anchor:
                return .anchor(
                    CenterJournal.AnchorOutcome(
                        raised: result["raised"] as? Bool ?? false, stored: UInt64(clamping: int(result["stored"]) ?? 0),
                        epoch: UInt16(truncatingIfNeeded: int(result["epoch"]) ?? 0)))
            case .message(let device, let message, let at, _, _):
                var outcome = CenterJournal.RecordOutcome(isNew: result["new"] as? Bool ?? false, alarmRecorded: result["alarmRecorded"] as? Bool ?? false)
                outcome.earlierCancel = int(result["earlierCancel"]).map { UInt32(truncatingIfNeeded: $0) }
                outcome.idReused = int(result["reused"]).map { Int($0) }
                if case .alarm(let alarm) = message, let (caseID, updateID) = pair(result["opened"]) {
                    outcome.openedCase = (
                        CasePolicy.Case(id: caseID, device: device, alarmID: alarm.id, state: .received, openedAt: at),
                        CaseUpdate(id: UInt32(truncatingIfNeeded: updateID), alarmID: alarm.id, state: .received, at: at)
                    )
                }
                if case .alarmCancel(let cancel) = message, let (caseID, updateID) = pair(result["closed"]) {
                    outcome.closedCase = (
                        CasePolicy.Case(id: caseID, device: device, alarmID: cancel.alarmID, state: .closed),
                        CaseUpdate(id: UInt32(truncatingIfNeeded: updateID), alarmID: cancel.alarmID, state: .closed, at: at)
                    )
                }
                return .recorded(outcome)
            case .caseUpdate(let changed, let at):
                return .caseUpdate(
                    int(result["update"]).map {
                        CaseUpdate(id: UInt32(truncatingIfNeeded: $0), alarmID: changed.alarmID, state: changed.state, at: at)
                    })
            case .caseUpdateDelivered, .forwarded:
                return .stored
            case .supervision:
                return .supervision(written: result["written"] as? Bool ?? false)
            case .dc09Event:
                throw JournalReadError(column: "journal_apply", found: "a write it does not take")
            }
        }
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// `journal_apply(writes jsonb) RETURNS jsonb`: `CenterJournal`'s `apply` for the writes above, in order.
    /// Case states: 1 received, 4 closed (`CaseState`). No `?` in it (jsonb's operator): the journal's
    /// statements number their `?` placeholders. The outcomes gather in an array (appended in place), not a
    /// JSONB value: `jsonb || jsonb` copies the whole, which made a batch quadratic in its size and a storm that
    /// fell behind (larger batches) fall further.
    static let function = """
        CREATE OR REPLACE FUNCTION journal_apply(writes JSONB) RETURNS JSONB LANGUAGE plpgsql AS $$
        DECLARE
            v_write JSONB; v_out JSONB; v_results JSONB[] := '{}';
            v_device BIGINT; v_id BIGINT; v_ref BIGINT; v_at BIGINT; v_kind TEXT; v_digest BYTEA; v_first BYTEA;
            v_found BIGINT; v_case BIGINT; v_update BIGINT; v_reuse BIGINT; v_state BIGINT; v_anchor BIGINT; v_epoch BIGINT;
            v_online BIGINT; v_zone BIGINT;
        BEGIN
            FOR v_device IN
                SELECT DISTINCT (e->>'d')::BIGINT FROM jsonb_array_elements(writes) AS e WHERE e->>'d' IS NOT NULL ORDER BY 1
            LOOP
                PERFORM pg_advisory_xact_lock(v_device);
            END LOOP;
            FOR v_write IN SELECT e FROM jsonb_array_elements(writes) WITH ORDINALITY AS t(e, n) ORDER BY n LOOP
                v_device := (v_write->>'d')::BIGINT;
                v_at := (v_write->>'at')::BIGINT;
                v_out := '{}'::JSONB;
                CASE v_write->>'k'
                WHEN 'anchor' THEN
                    v_anchor := (v_write->>'anchor')::BIGINT;
                    v_epoch := (v_write->>'epoch')::BIGINT;
                    INSERT INTO device (id, anchor, epoch) VALUES (v_device, v_anchor, v_epoch)
                    ON CONFLICT (id) DO UPDATE SET anchor = excluded.anchor, epoch = excluded.epoch
                    WHERE excluded.epoch > device.epoch OR (excluded.epoch = device.epoch AND excluded.anchor > device.anchor);
                    IF FOUND THEN
                        v_out := jsonb_build_object('raised', true, 'stored', v_anchor, 'epoch', v_epoch);
                        IF v_write->>'owner' IS NOT NULL THEN
                            UPDATE device_presence SET node = v_write->>'owner' WHERE device = v_device;
                        END IF;
                    ELSE
                        SELECT d.anchor, d.epoch INTO v_anchor, v_epoch FROM device d WHERE d.id = v_device;
                        v_out := jsonb_build_object('raised', false, 'stored', COALESCE(v_anchor, 0), 'epoch', COALESCE(v_epoch, 0));
                    END IF;
                WHEN 'message' THEN
                    v_id := (v_write->>'id')::BIGINT;
                    v_kind := v_write->>'kind';
                    v_ref := (v_write->>'ref')::BIGINT;
                    v_digest := decode(v_write->>'digest', 'hex');
                    INSERT INTO message (device, id, kind, ref, json, received_at, digest, note)
                    VALUES (v_device, v_id, v_kind, v_ref, v_write->>'json', v_at, v_digest, v_write->>'note')
                    ON CONFLICT (device, id) DO NOTHING;
                    IF FOUND THEN
                        v_out := jsonb_build_object('new', true);
                        IF v_write->'fwd' IS NOT NULL THEN
                            v_zone := (v_write->'fwd'->>'zone')::BIGINT;
                            IF v_kind = 'alarmCancel' THEN
                                SELECT (v_write->'zones'->>(m.json::JSONB->>'kind'))::BIGINT INTO v_zone FROM message m
                                WHERE m.device = v_device AND m.kind = 'alarm' AND m.id = v_ref;
                            END IF;
                            INSERT INTO dc09_forward (device, message_id, sia, qualifier, contact_id, zone, meaning, queued_at)
                            VALUES (v_device, v_id, v_write->'fwd'->>'sia', (v_write->'fwd'->>'q')::BIGINT,
                                (v_write->'fwd'->>'cid')::BIGINT, COALESCE(v_zone, (v_write->'fwd'->>'zone')::BIGINT),
                                v_write->'fwd'->>'meaning', v_at);
                        END IF;
                        IF v_kind = 'alarm' THEN
                            v_found := NULL;
                            SELECT m.id INTO v_found FROM message m
                            WHERE m.device = v_device AND m.kind = 'alarmCancel' AND m.ref = v_id LIMIT 1;
                            IF v_found IS NOT NULL THEN
                                v_out := v_out || jsonb_build_object('earlierCancel', v_found);
                            ELSIF (v_write->>'open')::BOOLEAN THEN
                                INSERT INTO dispatch_case (device, alarm_id, reuse, state, opened_at, updated_at, owner)
                                VALUES (v_device, v_id, 0, 1, v_at, v_at, v_write->>'owner') RETURNING id INTO v_case;
                                INSERT INTO case_update (case_id, state, at) VALUES (v_case, 1, v_at) RETURNING id INTO v_update;
                                v_out := v_out || jsonb_build_object('opened', jsonb_build_array(v_case, v_update));
                            END IF;
                        ELSIF v_kind = 'alarmCancel' THEN
                            v_out := v_out || jsonb_build_object('alarmRecorded', EXISTS (
                                SELECT 1 FROM message m WHERE m.device = v_device AND m.kind = 'alarm' AND m.id = v_ref));
                            v_case := NULL;
                            SELECT c.id INTO v_case FROM dispatch_case c
                            WHERE c.device = v_device AND c.alarm_id = v_ref AND c.state < 4 ORDER BY c.id DESC LIMIT 1;
                            IF v_case IS NOT NULL THEN
                                UPDATE dispatch_case SET state = 4, updated_at = v_at WHERE id = v_case AND state < 4;
                                IF FOUND THEN
                                    INSERT INTO case_update (case_id, state, at) VALUES (v_case, 4, v_at) RETURNING id INTO v_update;
                                    v_out := v_out || jsonb_build_object('closed', jsonb_build_array(v_case, v_update));
                                END IF;
                            END IF;
                        END IF;
                    ELSE
                        v_out := jsonb_build_object('new', false);
                        SELECT m.digest INTO v_first FROM message m WHERE m.device = v_device AND m.id = v_id;
                        IF v_first IS NOT NULL AND v_first <> v_digest THEN
                            v_reuse := NULL;
                            SELECT c.reuse INTO v_reuse FROM message_conflict c
                            WHERE c.device = v_device AND c.id = v_id AND c.digest = v_digest;
                            IF v_reuse IS NOT NULL THEN
                                v_out := v_out || jsonb_build_object('reused', v_reuse);
                            ELSE
                                SELECT COALESCE(MAX(c.reuse), 0) + 1 INTO v_reuse FROM message_conflict c
                                WHERE c.device = v_device AND c.id = v_id;
                                INSERT INTO message_conflict (device, id, reuse, kind, json, digest, received_at)
                                VALUES (v_device, v_id, v_reuse, v_kind, v_write->>'json', v_digest, v_at);
                                v_out := jsonb_build_object('new', v_kind = 'alarm', 'reused', v_reuse);
                                IF v_kind = 'alarm' AND v_write->'fwd' IS NOT NULL THEN
                                    INSERT INTO dc09_forward (device, message_id, sia, qualifier, contact_id, zone, meaning, queued_at)
                                    VALUES (v_device, v_id, v_write->'fwd'->>'sia', (v_write->'fwd'->>'q')::BIGINT,
                                        (v_write->'fwd'->>'cid')::BIGINT, (v_write->'fwd'->>'zone')::BIGINT, v_write->'fwd'->>'meaning', v_at);
                                END IF;
                                IF v_kind = 'alarm' AND (v_write->>'open')::BOOLEAN THEN
                                    INSERT INTO dispatch_case (device, alarm_id, reuse, state, opened_at, updated_at, owner)
                                    VALUES (v_device, v_id, v_reuse, 1, v_at, v_at, v_write->>'owner') RETURNING id INTO v_case;
                                    INSERT INTO case_update (case_id, state, at) VALUES (v_case, 1, v_at) RETURNING id INTO v_update;
                                    v_out := v_out || jsonb_build_object('opened', jsonb_build_array(v_case, v_update));
                                END IF;
                            END IF;
                        END IF;
                    END IF;
                WHEN 'case' THEN
                    v_case := (v_write->>'case')::BIGINT;
                    v_state := (v_write->>'state')::BIGINT;
                    UPDATE dispatch_case SET state = v_state, updated_at = v_at WHERE id = v_case AND state < v_state
                    AND (owner IS NULL OR v_write->>'owner' IS NULL OR owner = v_write->>'owner');
                    IF FOUND THEN
                        INSERT INTO case_update (case_id, state, at) VALUES (v_case, v_state, v_at) RETURNING id INTO v_update;
                        v_out := jsonb_build_object('update', v_update);
                    END IF;
                WHEN 'forwarded' THEN
                    DELETE FROM dc09_forward WHERE id IN (SELECT (r #>> '{}')::BIGINT FROM jsonb_array_elements(v_write->'rows') AS r);
                WHEN 'delivered' THEN
                    UPDATE case_update SET delivered_at = v_at WHERE id = (v_write->>'update')::BIGINT AND delivered_at IS NULL;
                WHEN 'supervision' THEN
                    v_online := (v_write->>'online')::BIGINT;
                    IF (v_online = 0 AND EXISTS (
                            SELECT 1 FROM device_presence p WHERE p.device = v_device AND p.node <> (v_write->>'owner')))
                        OR (v_write->>'anchor' IS NOT NULL AND (SELECT d.anchor FROM device d WHERE d.id = v_device)
                            IS DISTINCT FROM (v_write->>'anchor')::BIGINT)
                    THEN
                        v_out := jsonb_build_object('written', false);
                    ELSE
                        INSERT INTO supervision (device, online, at) VALUES (v_device, v_online, v_at);
                        INSERT INTO device_presence (device, node, online, at) VALUES (v_device, v_write->>'owner', v_online, v_at)
                        ON CONFLICT (device) DO UPDATE SET node = excluded.node, online = excluded.online, at = excluded.at;
                        v_out := jsonb_build_object('written', true);
                    END IF;
                ELSE
                    v_out := jsonb_build_object('new', false);
                END CASE;
                v_results := array_append(v_results, v_out);
            END LOOP;
            RETURN to_jsonb(v_results);
        END $$
        """
}
