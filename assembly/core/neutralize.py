"""Member text made inert for people and for other models: one function, `neutralize`.

Members write free text, and some of it is shown where characters act rather than
read: a terminal, a web page, another member's prompt. `neutralize` makes every
such character visible instead of letting it act:

- control characters (C0, DEL, C1) become their Unicode control pictures (ESC shows
  as ␛) or a `⟨U+0085⟩` marker, so no escape sequence, carriage return or bell
  reaches a terminal and no raw control character reaches a report;
- invisible format characters (bidi overrides and isolates U+202A–202E and
  U+2066–2069, zero-width spaces and joiners, the BOM, tag characters; Unicode
  category Cf), lone surrogates and the line and paragraph separators show as
  `⟨U+202E⟩`, so reordered or hidden text cannot pass for something else;
- chat-template tokens (`<|im_start|>`, `<|endoftext|>`, `[INST]`, `<s>`,
  `<<SYS>>`, `<start_of_turn>`, ...) show as `⟦im_start⟧`, which no tokenizer
  reads as a special token, so quoted speech cannot open a new turn in another
  member's prompt.

Newlines and tabs are kept (`clean` folds them for prompts). Transcripts keep the
text as the member wrote it: this is for display and for quoting, never for data.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Categories that act instead of being read: controls, format characters
# (bidi, zero-width, tags), surrogates, line and paragraph separators.
_ACTING = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_KEPT = frozenset("\n\t")
# Every character outside printable ASCII is looked at; most are shown as they are.
_SUSPECT = re.compile(r"[^\x20-\x7e\n\t]")
_TEMPLATE_TOKENS = re.compile(
    r"<[|｜]\s*([^<>|｜⟦⟧\s]{1,64}?)\s*[|｜]>"  # <|im_start|>, <|eot_id|>, DeepSeek's <｜...｜>
    r"|\[(/?(?:INST|SYS|SYSTEM_PROMPT|TOOL_CALLS|AVAILABLE_TOOLS|TOOL_RESULTS))\]"  # Llama 2, Mistral
    r"|<<(/?SYS)>>"  # Llama 2 system block
    r"|<(/?(?:s|bos|eos|pad|unk|start_of_turn|end_of_turn))>",  # sentence and Gemma turn markers
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def _shown(char: str) -> str:
    if char in _KEPT or unicodedata.category(char) not in _ACTING:
        return char
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # control pictures: ␀ … ␟
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"⟨U+{code:04X}⟩"


def _token(match: re.Match[str]) -> str:
    name = next(g for g in match.groups() if g is not None)
    return f"⟦{name}⟧"


def neutralize(text: str, *, tokens: bool = True) -> str:
    """`text` with every acting character shown as a visible marker, and (unless
    `tokens` is False) every chat-template token defused; see the module doc."""
    if _SUSPECT.search(text) is not None:
        text = _SUSPECT.sub(lambda m: _shown(m.group(0)), text)
    if tokens and ("<" in text or "[" in text):
        text = _TEMPLATE_TOKENS.sub(_token, text)
    return text
