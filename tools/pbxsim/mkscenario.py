#!/usr/bin/env python3
"""mkscenario.py: derives the simulator's scenario files from the recorded Asterisk fixtures.

Usage: tools/pbxsim/mkscenario.py [FIXTURE_DIR] [OUT_DIR]
  (defaults: ../shared/fixtures/asterisk-22.10.1 and tools/pbxsim/scenarios)

Each scenario is the event blocks of one call in one fixture, with the values that differ per
call turned into ${PLACEHOLDERS} (Uniqueids, channel sequence numbers, bridge ids, times, the
caller, the ActionID), QueueMemberStatus turned into %member lines (rendered from the state),
and %delay lines where the recorded call waited (answer after 1 s, talk 4 s, ...). Review the
diff of tools/pbxsim/scenarios/ after regenerating. The format is described in docs/pbxsim.md.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../shared/fixtures/asterisk-22.10.1")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "scenarios")


def packets(name):
    data = open(os.path.join(FIX, name), "rb").read().decode()
    body = data.split("\r\n", 1)[1]  # banner
    out = []
    for block in body.split("\r\n\r\n"):
        if not block.strip():
            continue
        hdrs = []
        for line in block.split("\r\n"):
            k, _, v = line.partition(":")
            hdrs.append((k, v[1:] if v.startswith(" ") else v))
        out.append(hdrs)
    return out


def get(p, key, default=None):
    for k, v in p:
        if k == key:
            return v
    return default


def is_event(p):
    return p[0][0] == "Event"


def response_index(ps, actionid):
    for i, p in enumerate(ps):
        if p[0][0] == "Response" and get(p, "ActionID") == actionid:
            return i
    raise KeyError(actionid)


def mentions(p, text):
    return any(text in v for _, v in p)


UID_RE = re.compile(r"^\d{10}\.\d+$")
SEQ_RE = re.compile(r"-([0-9a-f]{8})(?=;|$)")
BRIDGE_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Mapper:
    """Turns per-call values into placeholders, consistently over a set of packets."""

    def __init__(self, basis, caller=None, exten=None, endpoint=None, did=None):
        self.uids, self.seqs, self.bridges = {}, {}, {}
        self.caller, self.exten, self.endpoint, self.did = caller, exten, endpoint, did
        for p in basis:
            for k, v in p:
                if UID_RE.match(v) and k not in ("Timestamp",):
                    self.uids.setdefault(v, "${UID%d}" % (len(self.uids) + 1))
                for m in SEQ_RE.finditer(v):
                    self.seqs.setdefault(m.group(1), "${SEQ%d}" % (len(self.seqs) + 1))
                if BRIDGE_RE.match(v):
                    self.bridges.setdefault(v, "${BRIDGE%d}" % (len(self.bridges) + 1))

    def value(self, k, v, p):
        if v in self.uids:
            return self.uids[v]
        if v in self.bridges:
            return self.bridges[v]
        v = SEQ_RE.sub(lambda m: "-" + self.seqs.get(m.group(1), m.group(1)), v)
        if k in ("EventTV", "SessionTV"):
            return "${NOW_TV}"
        if k == "StartTime" or (k == "AnswerTime" and v):
            return "${START_CDR}"
        if k == "EndTime":
            return "${NOW_CDR}"
        if k == "Duration" and get(p, "Event") == "Cdr":
            return "${ELAPSED}"
        if k == "BillableSeconds":
            return "${ELAPSED}" if get(p, "AnswerTime") else "0"
        if k == "LastCall" and v != "0":
            return "${EPOCH}"
        if self.caller:
            num, name = self.caller
            if (k.endswith("CallerIDNum") or k.endswith("ConnectedLineNum") or k == "Source") and v == num:
                return "${CALLERNUM}"
            if (k.endswith("CallerIDName") or k.endswith("ConnectedLineName")) and v == name:
                return "${CALLERNAME}"
            if k == "CallerID" and v == '"%s" <%s>' % (name, num):
                return '"${CALLERNAME}" <${CALLERNUM}>'
        if self.exten:
            e = self.exten
            v = v.replace("Local/%s@from-internal" % e, "Local/${EXTEN}@from-internal")
            if v == "%s@from-internal" % e:
                v = "${EXTEN}@from-internal"
            if (k.endswith("Exten") or k in ("Extension", "Destination")) and v == e:
                v = "${EXTEN}"
        if self.endpoint:
            ep = self.endpoint
            v = v.replace("PJSIP/%s" % ep, "PJSIP/${ENDPOINT}").replace("sip:%s@" % ep, "sip:${ENDPOINT}@")
            if k in ("AccountID", "AOR", "EndpointName") and v == ep:
                v = "${ENDPOINT}"
            if get(p, "Event") == "ExtensionStatus" and k == "Exten" and v == ep:
                v = "${ENDPOINT}"
        if self.did:
            if v == self.did:
                v = "${DID}"
        return v


def member_line(p, seen):
    """A QueueMemberStatus becomes %member: the state renders it (CallsTaken, LastCall...).
    CallsTaken grows by what it grew since the member's previous status in this recording."""
    parts = ["%member", get(p, "Queue"), get(p, "Interface"),
             "InCall=" + get(p, "InCall"), "Status=" + get(p, "Status")]
    key = (get(p, "Queue"), get(p, "Interface"))
    taken = int(get(p, "CallsTaken"))
    if key in seen and taken > seen[key]:
        parts += ["CallsTaken=+%d" % (taken - seen[key]), "LastCall=${EPOCH}"]
    seen[key] = taken
    return " ".join(parts)


def render(ps, mapper, delays=None, originate=True):
    """delays: {packet index: ms} inserted before that packet."""
    delays = delays or {}
    lines = []
    seen = {}
    for i, p in enumerate(ps):
        if i in delays:
            lines.append("%%delay %d" % delays[i])
        ev = get(p, "Event")
        if ev == "QueueMemberStatus":
            lines.append(member_line(p, seen))
            continue
        if ev == "OriginateResponse":
            lines += originate_response(p, mapper)
            continue
        if ev in ("NewCallerid", "NewConnectedLine") and mapper.caller and originate:
            lines.append("%if CALLERID")
        for k, v in p:
            lines.append("%s: %s" % (k, mapper.value(k, v, p)))
        lines.append("")
    return lines


def originate_response(p, mapper):
    """Two variants: Originate with Context/Exten, and with Application/Data."""
    out = []
    failed = get(p, "Response") == "Failure"
    for app in (False, True):
        out.append("%if ASYNC " + ("APP" if app else "!APP"))
        for k, v in p:
            if k == "ActionID":
                out.append("ActionID: ${ACTIONID}")
            elif k in ("Context", "Exten", "Application", "Data"):
                if k == "Context" or k == "Application":
                    if app:
                        out += ["Application: ${ORIG_APP}", "Data: ${ORIG_DATA}"]
                    else:
                        out += ["Context: ${ORIG_CONTEXT}", "Exten: ${ORIG_EXTEN}"]
            elif k == "Channel" and failed:
                out.append("Channel: ${ORIG_CHANNEL}")
            elif k in ("CallerIDNum", "CallerIDName"):
                out.append("%s: ${%s}" % (k, "CALLERNUM" if k.endswith("Num") else "CALLERNAME"))
            else:
                out.append("%s: %s" % (k, mapper.value(k, v, p)))
        out.append("")
    return out


def first(ps, pred, start=0):
    for i in range(start, len(ps)):
        if pred(ps[i]):
            return i
    raise KeyError("no match")


def write(name, source, what, sets, lines):
    path = os.path.join(OUT, name + ".scn")
    with open(path, "w") as f:
        f.write("# %s: generated by tools/pbxsim/mkscenario.py from\n" % name)
        f.write("# fixtures/asterisk-22.10.1/%s (%s).\n" % (source, what))
        f.write("# Format: docs/pbxsim.md. Regenerate instead of editing by hand.\n")
        for k, v in sets:
            f.write("%%set %s %s\n" % (k, v))
        f.write("\n")
        f.write("\n".join(lines).rstrip("\n") + "\n")
    print("wrote", path)


def ev(name, **match):
    def pred(p):
        if get(p, "Event") != name:
            return False
        return all(m in (get(p, k) or "") for k, m in match.items())
    return pred


def main():
    os.makedirs(OUT, exist_ok=True)

    # 05: click-to-dial / internal call: Originate Local/100@from-internal -> hello,s
    f = "05-originate-success-full-call.ami"
    ps = packets(f)
    ps = [p for p in ps[response_index(ps, "rec-2") + 1:] if is_event(p)]
    # the originate's Variable: headers become one %each block per channel
    out, seen = [], set()
    for p in ps:
        if get(p, "Event") == "VarSet" and get(p, "Variable") in ("SB_JOB", "SB_TAG"):
            key = get(p, "Channel")
            if key in seen:
                continue
            seen.add(key)
            p = [(k, "${VARNAME}" if k == "Variable" else "${VARVALUE}" if k == "Value" else v) for k, v in p]
            p = [("%each-reverse" if len(seen) == 1 else "%each", "VARIABLE")] + p
        out.append(p)
    ps = out
    m = Mapper(ps, caller=("5551234", "Web Caller"), exten="100")
    delays = {first(ps, ev("VarSet", Variable="PLAYBACKSTATUS")): 1000}
    lines = render_each(ps, m, delays)
    write("internal-call", f, "events after the Originate answer",
          [("EXTEN", "100"), ("CALLERNUM", "<unknown>"), ("CALLERNAME", "<unknown>"),
           ("ORIG_CONTEXT", "hello"), ("ORIG_EXTEN", "s")], lines)

    # 06: the sync Originate of Local/100 with Application Wait 1 (rec-5)
    f = "06-originate-failures.ami"
    all06 = packets(f)
    r5 = response_index(all06, "rec-5")
    ps = [p for p in all06[r5 + 1:] if is_event(p) and mentions(p, "Local/100@from-internal")]
    # an async Originate answers with OriginateResponse after DialEnd (fixtures 10, 14)
    resp = [("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", "rec-5"),
            ("Response", "Success"), ("Channel", "Local/100@from-internal-00000004;1"),
            ("Application", "Wait"), ("Data", "1"), ("Reason", "4"), ("Uniqueid", "1795478336.8"),
            ("CallerIDNum", "<unknown>"), ("CallerIDName", "<unknown>")]
    de = first(ps, ev("DialEnd"))
    ps = ps[:de + 1] + [resp] + ps[de + 1:]
    m = Mapper(ps, exten="100")
    lines = render(ps, m, {first(ps, ev("Cdr")): 1000})
    write("originate-app", f, "the Local/100 Originate with Application Wait, rec-5; "
          "OriginateResponse added as fixtures 10 and 14 show it",
          [("EXTEN", "100"), ("CALLERNUM", "<unknown>"), ("CALLERNAME", "<unknown>"),
           ("ORIG_APP", "Wait"), ("ORIG_DATA", "1")], lines)
    app_tail_from = first(ps, ev("Cdr"))
    app_tail = ps[app_tail_from:]
    app_basis = ps

    # 06: busy (rec-3), missing context (rec-4), unregistered endpoint (rec-2)
    ps = [p for p in all06 if is_event(p) and (mentions(p, "Local/999@from-internal") or get(p, "ActionID") == "rec-3")]
    m = Mapper(ps, exten="999")
    write("originate-busy", f, "the Originate to a Busy() extension, rec-3",
          [("EXTEN", "999"), ("CALLERNUM", "<unknown>"), ("CALLERNAME", "<unknown>"),
           ("ORIG_APP", "Wait"), ("ORIG_DATA", "2"), ("ORIG_CHANNEL", "Local/999@from-internal")],
          render(ps, m))
    ps = [p for p in all06 if is_event(p) and (mentions(p, "nosuchcontext") or get(p, "ActionID") == "rec-4")]
    ps = [[(k, v.replace("Local/12345@nosuchcontext", "Local/${EXTEN}@${CONTEXT}")
            if k != "Exten" and k != "Destination" and k != "DestinationContext" and k != "Context"
            else ("${EXTEN}" if v == "12345" else "${CONTEXT}" if v == "nosuchcontext" else v))
           for k, v in p] for p in ps]
    m = Mapper(ps)
    write("originate-nocontext", f, "the Originate into a missing context, rec-4",
          [("EXTEN", "12345"), ("CONTEXT", "nosuchcontext"), ("CALLERNUM", "<unknown>"),
           ("CALLERNAME", "<unknown>"), ("ORIG_APP", "Wait"), ("ORIG_DATA", "2"),
           ("ORIG_CHANNEL", "Local/12345@nosuchcontext")], render(ps, m))
    ps = [p for p in all06 if is_event(p) and get(p, "ActionID") == "rec-2"]
    m = Mapper(ps)
    write("originate-unregistered", f, "the Originate to an unregistered PJSIP endpoint, rec-2",
          [("CALLERNUM", "<unknown>"), ("CALLERNAME", "<unknown>"), ("ORIG_CONTEXT", "hello"),
           ("ORIG_EXTEN", "s"), ("ORIG_CHANNEL", "PJSIP/1003")], render(ps, m))

    # 07: a caller into queue sales, answered by Agent Ben
    f = "07-queue-call-answered-agent-complete.ami"
    ps = packets(f)
    ps = [p for p in ps[response_index(ps, "rec-2") + 1:] if is_event(p)]
    m = Mapper(ps, caller=("34600111222", "Customer"), exten="200")
    up = first(ps, lambda p: get(p, "Event") == "Newexten" and "@agents" in get(p, "Channel", "")
               and get(p, "Application") == "Answer")
    be = first(ps, ev("BridgeEnter"))
    talk = first(ps, ev("Newexten", Channel="502@agents"), be)
    write("queue-call-answered", f, "events after the Originate answer",
          [("EXTEN", "200"), ("CALLERNUM", "34600111222"), ("CALLERNAME", "Customer"),
           ("CALLERID", "1"), ("ORIG_APP", "Wait"), ("ORIG_DATA", "30")],
          render(ps, m, {up: 1000, talk: 4000}))

    # 08: a caller into queue support (member paused) who hangs up after 3 s
    f = "08-queue-call-abandoned.ami"
    ps = packets(f)
    ps = [p for p in ps[response_index(ps, "rec-3") + 1:response_index(ps, "rec-4")] if is_event(p)]
    m = Mapper(ps, caller=("34600999888", "Impatient"), exten="201")
    join = first(ps, ev("QueueCallerJoin"))
    write("queue-call-abandoned", f, "events between the Originate answer and the unpause",
          [("EXTEN", "201"), ("CALLERNUM", "34600999888"), ("CALLERNAME", "Impatient"),
           ("CALLERID", "1"), ("ORIG_APP", "Wait"), ("ORIG_DATA", "3")],
          render(ps, m, {join + 1: 3000}))

    # 16: inbound trunk call, FastAGI answers and runs Queue(sales); Agent Ben answers
    f = "16-pjsip-trunk-inbound-to-fastagi-queue.ami"
    ps = packets(f)
    ps = [p for p in ps if is_event(p)][2:]  # after FullyBooted and SuccessfulAuth
    m = Mapper(ps, caller=("sipp", "sipp"), did="34911222333")
    up = first(ps, lambda p: get(p, "Event") == "Newstate" and "@agents" in get(p, "Channel", "")
               and get(p, "ChannelState") == "6")
    be = first(ps, ev("BridgeEnter"))
    talk = first(ps, ev("Newexten", Channel="502@agents"), be)
    write("inbound-trunk-queue", f, "every event of the session after the login",
          [("DID", "34911222333"), ("CALLERNUM", "sipp"), ("CALLERNAME", "sipp")],
          render(ps, m, {up: 1000, talk: 4000}, originate=False))

    # 15: a phone registers; then an Originate rings it and it answers (click-to-dial)
    f = "15-pjsip-phone-register-and-call.ami"
    all15 = packets(f)
    r2 = response_index(all15, "rec-2")
    ps = [p for p in all15[:r2] if is_event(p)][2:]
    # the recording caught a re-registration; the first one also changes the device state
    ps += [[("Event", "DeviceStateChange"), ("Privilege", "call,all"), ("Device", "PJSIP/1001"),
            ("State", "NOT_INUSE")],
           [("Event", "ExtensionStatus"), ("Privilege", "call,all"), ("Exten", "1001"),
            ("Context", "from-internal"), ("Hint", "PJSIP/1001"), ("Status", "0"),
            ("StatusText", "Idle")]]
    m = Mapper(ps, endpoint="1001")
    write("register-phone", f, "the registration events; DeviceStateChange and ExtensionStatus "
          "added as a first registration sends them", [("ENDPOINT", "1001")], render(ps, m))
    ps = [p for p in all15[response_index(all15, "rec-3") + 1:] if is_event(p)]
    m = Mapper(ps, caller=("200", "Click2Dial"), endpoint="1001")
    up = first(ps, lambda p: get(p, "Event") == "Newstate" and get(p, "ChannelState") == "6")
    bye = first(ps, ev("SoftHangupRequest"))
    write("originate-phone", f, "events after the Originate answer",
          [("ENDPOINT", "1001"), ("CALLERNUM", "200"), ("CALLERNAME", "Click2Dial"),
           ("CALLERID", "1"), ("ORIG_CONTEXT", "hello"), ("ORIG_EXTEN", "s")],
          render(ps, m, {up: 1000, bye: 1000}))

    # 14: a long call (Local/600, Wait 20); Redirect moves ;2 to hello,s (the -redirect part)
    f = "14-redirect-and-hangup-actions.ami"
    all14 = packets(f)
    call = [p for p in all14[response_index(all14, "rec-2") + 1:response_index(all14, "rec-3")] if is_event(p)]
    redir = [p for p in all14[response_index(all14, "rec-4") + 1:response_index(all14, "rec-5")] if is_event(p)]
    m = Mapper(call + redir, exten="600")
    # a Wait that runs out ends like the Wait of fixture 06 rec-5
    tail_map = Mapper(app_basis, exten="100")
    tail = render(app_tail, tail_map)
    tail = [l.replace("Local/${EXTEN}@from-internal", "Local/${EXTEN}@from-internal") for l in tail]
    write("long-call", f, "events after the Originate answer; the end after the Wait is the "
          "end of fixture 06 rec-5",
          [("EXTEN", "600"), ("CALLERNUM", "<unknown>"), ("CALLERNAME", "<unknown>"),
           ("ORIG_APP", "Wait"), ("ORIG_DATA", "20")],
          render(call, m) + ["%delay 20000"] + tail)
    pb = first(redir, ev("VarSet", Variable="PLAYBACKSTATUS"))
    write("long-call-redirect", f, "events after the Redirect answer",
          [("EXTEN", "600"), ("CALLERNUM", "<unknown>"), ("CALLERNAME", "<unknown>")],
          render(redir, m, {pb: 1000}))


def render_each(ps, mapper, delays):
    """render() for packets that may start with a (%each, VARIABLE) pseudo header."""
    lines = []
    for i, p in enumerate(ps):
        if p[0][0].startswith("%each"):
            if i in delays:
                lines.append("%%delay %d" % delays[i])
            lines.append("%s VARIABLE" % p[0][0])
            sub = render([p[1:]], mapper)
            lines += sub
        else:
            lines += render([p], mapper, {0: delays[i]} if i in delays else None)
    return lines


if __name__ == "__main__":
    main()
