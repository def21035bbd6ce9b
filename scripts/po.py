#!/usr/bin/python3
"""Translations of the Cockpit page, the way Cockpit's own pages lay them out.

    scripts/po.py pot            write po/cockpit-totp.pot from cockpit/
    scripts/po.py js LANG        print po.LANG.js (cockpit.locale) from po/LANG.po
    scripts/po.py check          the template is current and every language
                                 in po/LINGUAS translates every message

Messages come from cockpit/totp.js and cockpit/resync.js (_("..."), cockpit.gettext("..."),
cockpit.ngettext("...", "...", n); double-quoted literals, joined with +
if need be) and from cockpit/index.html (elements with translate="yes" for
their text, or translate="ATTR ..." for attributes, as cockpit.translate()
reads them). The page loads po.js, which the bridge serves as po.LANG.js
for the shell's language (the CockpitLang cookie).

Python's standard library only: the package build runs `js` offline.
Updating a translation after `pot` is gettext's job:
msgmerge --update --backup=none po/fr.po po/cockpit-totp.pot
"""

import html.parser
import json
import pathlib
import re
import sys

TOP = pathlib.Path(__file__).resolve().parent.parent
PO_DIR = TOP / "po"
TEMPLATE = PO_DIR / "cockpit-totp.pot"
SOURCES = ["cockpit/index.html", "cockpit/totp.js", "cockpit/resync.js"]
HEADER = """# Translations of cockpit-totp, the Cockpit page of pam_totp.
# This file is distributed under the same license as pam_totp (GPL-3.0-or-later).
# Made by scripts/po.py pot; do not edit.
msgid ""
msgstr ""
"Project-Id-Version: cockpit-totp\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Content-Transfer-Encoding: 8bit\\n"
"""


class Message:
    def __init__(self, msgid, plural=None, context=None):
        self.msgid = msgid
        self.plural = plural
        self.context = context
        self.refs = []
        self.strs = []  # msgstr, or msgstr[0..]
        self.fuzzy = False

    @property
    def key(self):
        return (self.context or "") + "\u0004" + self.msgid if self.context else self.msgid


# ---- extraction ------------------------------------------------------------

STRING = r'"(?:[^"\\\n]|\\.)*"'
JOINED = rf"{STRING}(?:\s*\+\s*{STRING})*"
JS_CALL = re.compile(
    rf"(?<![\w.$])(?:_|cockpit\.gettext|cockpit\.ngettext)\(\s*({JOINED})(?:\s*,\s*({JOINED}))?")
JS_PLURAL = re.compile(r"cockpit\.ngettext\($")


def js_string(joined):
    return "".join(json.loads(part) for part in re.findall(STRING, joined))


def extract_js(path, text, add):
    for m in JS_CALL.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        plural = text[m.start():m.start() + 17] == "cockpit.ngettext("
        msgid = js_string(m.group(1))
        if plural:
            if m.group(2) is None:
                raise SystemExit(f"{path}:{line}: ngettext needs a plural string literal")
            add(Message(msgid, js_string(m.group(2))), f"{path}:{line}")
        else:
            add(Message(msgid), f"{path}:{line}")
    # A call whose first argument is not a literal cannot be extracted.
    for m in re.finditer(r"(?<![\w.$])(?:_|cockpit\.gettext|cockpit\.ngettext)\(\s*(?!\"|\))", text):
        line = text.count("\n", 0, m.start()) + 1
        raise SystemExit(f"{path}:{line}: a translated string must be a double-quoted literal")


class HtmlMessages(html.parser.HTMLParser):
    VOID = {"img", "input", "meta", "link", "br", "hr"}

    def __init__(self, path, add):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.add = add
        self.open = []  # [tag, text parts or None, line, context]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        line = self.getpos()[0]
        words = (attrs.get("translate") or "").split()
        context = attrs.get("translate-context")
        for word in words:
            if word not in ("yes", "translate", "no"):
                value = attrs.get(word)
                if value is None:
                    raise SystemExit(f"{self.path}:{line}: translate names {word}, which is not set")
                self.add(Message(value, context=context), f"{self.path}:{line}")
        if tag in self.VOID:
            return
        text = [] if ("yes" in words or "translate" in words) else None
        self.open.append([tag, text, line, context])

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        while self.open:
            open_tag, text, line, context = self.open.pop()
            if text is not None:
                msgid = "".join(text)
                if msgid.strip():
                    self.add(Message(msgid, context=context), f"{self.path}:{line}")
            if open_tag == tag:
                break

    def handle_data(self, data):
        for entry in self.open:
            if entry[1] is not None:
                entry[1].append(data)


def extract():
    messages = {}

    def add(message, ref):
        known = messages.setdefault(message.key, message)
        if known.plural != message.plural:
            raise SystemExit(f"{ref}: {message.msgid!r} is used with and without a plural")
        known.refs.append(ref)

    for name in SOURCES:
        text = (TOP / name).read_text(encoding="utf-8")
        if name.endswith(".js"):
            extract_js(name, text, add)
        else:
            HtmlMessages(name, add).feed(text)
    return list(messages.values())


# ---- .po files -----------------------------------------------------------------

def po_quote(text):
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = escaped.split("\n")
    if len(lines) == 1:
        return f'"{lines[0]}"'
    parts = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{p}"' for p in parts)


def template_text(messages):
    out = [HEADER]
    for m in messages:
        out.append("")
        out.append("#: " + " ".join(m.refs))
        if m.context is not None:
            out.append("msgctxt " + po_quote(m.context))
        out.append("msgid " + po_quote(m.msgid))
        if m.plural is not None:
            out.append("msgid_plural " + po_quote(m.plural))
            out.append('msgstr[0] ""')
            out.append('msgstr[1] ""')
        else:
            out.append('msgstr ""')
    return "\n".join(out) + "\n"


def po_unquote(token, where):
    try:
        return json.loads(token.replace("\\t", "\t").replace("\t", "\\t"))
    except ValueError:
        raise SystemExit(f"{where}: not a PO string: {token}")


def read_po(path):
    """Entries (Message) and the header's fields."""
    entries = []
    current = None
    field = None
    fuzzy = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        where = f"{path.name}:{number}"
        if not line:
            continue
        if line.startswith("#,"):
            fuzzy = "fuzzy" in line
            continue
        if line.startswith("#"):
            continue
        m = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$', line)
        if m:
            keyword, index, token = m.group(1), m.group(2), m.group(3)
            value = po_unquote(token, where)
            if keyword in ("msgctxt", "msgid") and (current is None or current.strs):
                current = Message("")
                current.fuzzy = fuzzy
                fuzzy = False
                entries.append(current)
            if keyword == "msgctxt":
                current.context = value
                field = ("context", None)
            elif keyword == "msgid":
                current.msgid = value
                field = ("msgid", None)
            elif keyword == "msgid_plural":
                current.plural = value
                field = ("plural", None)
            else:
                i = int(index or 0)
                while len(current.strs) <= i:
                    current.strs.append("")
                current.strs[i] = value
                field = ("str", i)
            continue
        if line.startswith('"') and field is not None:
            value = po_unquote(line, where)
            name, i = field
            if name == "str":
                current.strs[i] += value
            else:
                setattr(current, name, getattr(current, name) + value)
            continue
        raise SystemExit(f"{where}: cannot read: {raw}")
    header = {}
    for m in entries:
        if m.msgid == "" and m.context is None:
            for line in m.strs[0].splitlines():
                if ":" in line:
                    k, v = line.split(":", 1)
                    header[k.strip()] = v.strip()
    return [m for m in entries if m.msgid != ""], header


def languages():
    text = (PO_DIR / "LINGUAS").read_text(encoding="utf-8")
    return [w for line in text.splitlines() for w in line.split("#")[0].split()]


# ---- po.LANG.js ----------------------------------------------------------------

PLURAL = re.compile(r"nplurals\s*=\s*(\d+)\s*;\s*plural\s*=\s*([^;]+);?")


def plural_function(header, where):
    m = PLURAL.search(header.get("Plural-Forms", ""))
    if not m:
        raise SystemExit(f"{where}: no Plural-Forms in the header")
    expression = m.group(2).strip()
    # Only arithmetic on n: nothing else may reach the page as code.
    if not re.fullmatch(r"[n0-9\s<>=!&|?:%()+\-]+", expression):
        raise SystemExit(f"{where}: Plural-Forms holds more than arithmetic on n: {expression}")
    return f"function (n) {{ return {expression}; }}"


def js(lang):
    path = PO_DIR / f"{lang}.po"
    entries, header = read_po(path)
    body = {}
    for m in entries:
        if m.fuzzy or not any(m.strs):
            continue
        body[m.key] = [m.plural] + m.strs
    language = header.get("Language", lang)
    direction = "rtl" if language.split("_")[0] in ("ar", "fa", "he", "ur") else "ltr"
    meta = (f'"plural-forms": {plural_function(header, path.name)}, '
            f'"language": {json.dumps(language)}, "language-direction": "{direction}"')
    items = [f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
             for k, v in sorted(body.items())]
    return ("// Made by scripts/po.py from po/" + path.name + "; do not edit.\n"
            "cockpit.locale({\n \"\": {" + meta + "},\n " + ",\n ".join(items) + "\n});\n")


# ---- check -------------------------------------------------------------------

def placeholders(text):
    return sorted(set(re.findall(r"\$\d", text)))


def check():
    problems = []
    messages = extract()
    if not TEMPLATE.exists() or TEMPLATE.read_text(encoding="utf-8") != template_text(messages):
        problems.append(f"{TEMPLATE.relative_to(TOP)} is not current: run scripts/po.py pot, "
                        "then msgmerge the languages and translate")
    wanted = {m.key: m for m in messages}
    for lang in languages():
        entries, header = read_po(PO_DIR / f"{lang}.po")
        plural_function(header, f"{lang}.po")
        have = {m.key: m for m in entries}
        for key, m in wanted.items():
            t = have.get(key)
            if t is None:
                problems.append(f"{lang}.po: missing {m.msgid!r}")
            elif t.fuzzy or not all(t.strs) or not t.strs:
                problems.append(f"{lang}.po: not translated (or fuzzy): {m.msgid!r}")
            else:
                for s in t.strs:
                    if placeholders(s) != placeholders(m.msgid):
                        problems.append(f"{lang}.po: placeholders differ in {m.msgid!r}: {s!r}")
        for key in have.keys() - wanted.keys():
            problems.append(f"{lang}.po: not in the template (obsolete): {have[key].msgid!r}")
    for p in problems:
        print("po: " + p, file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if argv[1:2] == ["pot"]:
        TEMPLATE.write_text(template_text(extract()), encoding="utf-8")
        return 0
    if argv[1:2] == ["js"] and len(argv) == 3:
        sys.stdout.write(js(argv[2]))
        return 0
    if argv[1:2] == ["check"]:
        return check()
    if argv[1:2] == ["languages"]:
        print(" ".join(languages()))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
