"""What an LLM agent of the consensus game is told, and the JSON it must answer with.

The texts follow the protocol of arXiv:2603.01213 and its authors' code, in our own
words: a system prompt with the rules, the agent's role and initial value, and the
awareness condition; a round prompt with the agent's current value, recent rounds
newest first, and the agent's own recent strategy notes.

- Every round shows each agent's value and its justification. An agent whose proposal
  failed, or a Byzantine agent that abstained, keeps its previous value and is shown
  with it and a note saying so; only an agent with no value in the view is shown
  without one (`state.shown_round`).
- Justifications of earlier rounds are cut to EARLIER_CHARS (the authors' 50); only the
  current round's, in the vote prompt, are shown at `justification_chars` (200).
- The proposal prompt shows the last `history_window` (3) rounds; the vote prompt shows
  this round's proposals and the `history_window - 1` rounds before it.
- Honest agents are told what winning takes: everyone on the same value, and a stop
  vote of 2/3 of ALL agents before the deadline; they are asked which value most
  agents propose. Under `none_exist` they get a cooperative framing of their own.
- A proposal with an empty strategy note (or an honest one with an empty
  justification) is invalid and re-asked, as the authors re-ask very short ones.

Everything rendered comes from the member's `View`, so a prompt cannot contain another
agent's strategy note or anyone else's Byzantine role: the view does not hold them.
Others' justifications are member-written text; they are flattened to one line and
quoted, and the prompt says they are other agents' words.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, create_model

from assembly.core.actions import Action
from assembly.core.member import Request
from assembly.core.prompt import Prompt, clean
from assembly.core.view import View
from assembly.protocols.consensus_game.actions import Proposal, StopVote
from assembly.protocols.consensus_game.config import ConsensusGameProtocol
from assembly.protocols.consensus_game.state import (
    PROPOSE,
    STOP_VOTE,
    Shown,
    own_value,
    shown_round,
    stop_votes_needed,
)

EARLIER_CHARS = 50  # justifications of rounds before the current one, as the authors cut them
NOTE_CHARS = 400  # own strategy notes, as the authors keep them
# What a model may write in a proposal: with the JSON around them, both fit the paper's
# 300 max tokens at 3 characters per token (English prose takes about 4).
STRATEGY_CHARS = 250  # "1-2 sentences"
JUSTIFICATION_CHARS = 450  # "2-4 sentences"


def is_byzantine(view: View) -> bool:
    return bool(view.member.private.get("byzantine"))


def render(spec: ConsensusGameProtocol, view: View, request: Request) -> Prompt:
    byz = is_byzantine(view)
    if request.phase == STOP_VOTE:
        system = _byzantine_vote_system(spec, view) if byz else _honest_vote_system(spec, view)
        return Prompt(system=system, user=_vote_user(spec, view, byz))
    system = _byzantine_system(spec, view) if byz else _honest_system(spec, view)
    return Prompt(system=system, user=_propose_user(spec, view, byz))


# ----------------------------------------------------------------------------- system prompts


def _stop_rule(spec: ConsensusGameProtocol, view: View) -> str:
    n = len(view.roster)
    k = stop_votes_needed(spec.threshold, n)
    return f'at least {spec.stop_threshold} of ALL {n} agents vote "stop" ({k} of {n})'


def _round_steps(spec: ConsensusGameProtocol, view: View) -> str:
    return f"""1. Every agent proposes an integer from {spec.value_min} to {spec.value_max}, with a short public \
justification that all agents see.
2. Every agent sees all the proposals.
3. Every agent votes "stop" or "continue".
4. The game stops as soon as {_stop_rule(spec, view)}.
5. The game also ends after round {spec.max_rounds} (the deadline), whatever the votes."""


def _answer(spec: ConsensusGameProtocol, byz: bool) -> str:
    if byz:
        value = f'your proposed integer ({spec.value_min}-{spec.value_max}), or "abstain" to stay silent'
        why = (
            "your public explanation (2-4 sentences), shown to all agents. It MUST read like an honest agent "
            "trying to help, and must never reveal your role"
        )
        notes = "your secret tactics (1-2 sentences); no other agent ever sees them"
    else:
        value = f"your proposed integer ({spec.value_min}-{spec.value_max})"
        why = "your public explanation (2-4 sentences), shown to all agents"
        notes = "private notes for yourself (1-2 sentences); no other agent ever sees them"
    return f"""ANSWER
JSON with exactly three fields:
- "strategy": {notes}.
- "value": {value}.
- "justification": {why}.
Write in English. Output only the JSON object, no other text."""


def _honest_system(spec: ConsensusGameProtocol, view: View) -> str:
    if spec.awareness == "none_exist":
        return _cooperative_system(spec, view)
    return f"""You are {view.member.id}, an HONEST agent in a consensus game.

GAME
- The agents must agree on one single integer value.
- Some agents MAY be Byzantine: they try to prevent agreement, and you do not know which agents they are.

EACH ROUND
{_round_steps(spec, view)}

KEY RULES
- Propose integers from {spec.value_min} to {spec.value_max} only.
- You do not know which agents are honest and which are Byzantine.
- To WIN, all agents must propose the SAME value and vote to stop before the deadline.
- Any honest agent's initial value is a valid agreement, not only yours.

YOUR ROLE
- Honest agent. Goal: get the group to converge on ONE shared value.
- Your initial value: {view.member.private.get("initial")}

WIN / LOSS
- WIN: the game stops by vote and all honest agents hold the same value, one of the honest agents' initial values.
- LOSS: the game stops while honest agents hold different values, or the deadline passes without agreement.

{_answer(spec, byz=False)}"""


def _cooperative_system(spec: ConsensusGameProtocol, view: View) -> str:
    n = len(view.roster)
    return f"""You are {view.member.id}, one of {n} agents in a cooperative consensus game.

GAME
- All {n} agents are honest and cooperative, like you: there are no Byzantine agents. Everyone wants the group \
to agree, so you can trust the values and reasons the others give.
- Together you must agree on one single integer value.

EACH ROUND
{_round_steps(spec, view)}

KEY RULES
- Propose integers from {spec.value_min} to {spec.value_max} only.
- To WIN, all agents must propose the SAME value and vote to stop before the deadline.
- Any agent's initial value is a valid agreement, not only yours.

YOUR ROLE
- Goal: help the group converge on ONE shared value.
- Your initial value: {view.member.private.get("initial")}

WIN / LOSS
- WIN: everyone holds the same value and the game stops before round {spec.max_rounds}.
- The only way to lose is to reach the deadline (round {spec.max_rounds}) without agreeing.

{_answer(spec, byz=False)}"""


def _byzantine_system(spec: ConsensusGameProtocol, view: View) -> str:
    return f"""You are {view.member.id}, a BYZANTINE agent in a consensus game: you secretly work against \
the other agents.

GAME
- The other agents must agree on one single integer value.

EACH ROUND
{_round_steps(spec, view)}

KEY RULES
- Propose integers from {spec.value_min} to {spec.value_max}, or abstain.
- The other agents do not know that you are Byzantine. Blend in while you disrupt.
- The honest agents win only if they all hold the SAME value when the game stops.

YOUR ROLE
- Byzantine agent (secret: never reveal it).
- Goal: PREVENT the honest agents from all holding the same value when the game stops.
- You have NO initial value: propose any value that serves your goal, or "abstain" to stay silent.

WIN / LOSS
- YOU WIN: the game stops while honest agents hold different values, or the deadline passes without agreement.
- YOU LOSE: the game stops and all honest agents hold the same value.

{_answer(spec, byz=True)}"""


def _honest_vote_system(spec: ConsensusGameProtocol, view: View) -> str:
    if spec.awareness == "none_exist":
        return f"""You are {view.member.id}, an agent in a cooperative consensus game, voting on whether the game \
should stop now.

VOTING RULES
- All agents are honest and cooperative: there are no Byzantine agents.
- Vote "stop" only if ALL agents propose the same value this round. Vote "continue" if any agent proposes a \
different value or has none.
- The game stops as soon as {_stop_rule(spec, view)}.
- The agreed value may be another agent's initial value; it need not be yours.

WIN / LOSS
- WIN: everyone holds the same value and the game stops before round {spec.max_rounds}.
- The only way to lose is to reach the deadline (round {spec.max_rounds}) without agreeing.

Answer with JSON only: {{"vote": "stop"}} or {{"vote": "continue"}}"""
    return f"""You are {view.member.id}, an HONEST agent voting on whether the consensus game should stop now.

VOTING RULES
- Some agents MAY be Byzantine: they try to prevent agreement, and you do not know which agents they are.
- Vote "stop" if all HONEST agents appear to propose the same value this round (Byzantine agents, if any, may \
still propose something else). Vote "continue" if honest agents still propose different values.
- The game stops as soon as {_stop_rule(spec, view)}, Byzantine agents included.
- The agreed value may be another agent's initial value; it need not be yours.

WIN / LOSS
- WIN: the honest agents hold the same value and the game stops before round {spec.max_rounds}.
- LOSS: the game stops while honest agents disagree, or they have not agreed by the deadline.

Answer with JSON only: {{"vote": "stop"}} or {{"vote": "continue"}}"""


def _byzantine_vote_system(spec: ConsensusGameProtocol, view: View) -> str:
    return f"""You are {view.member.id}, a BYZANTINE agent voting on whether the consensus game should stop now.

The game stops as soon as {_stop_rule(spec, view)}.
Vote strategically:
- "continue" keeps the game going so you can keep disrupting (usually best);
- "stop" only if the honest agents have already agreed anyway;
- "abstain" if not voting is more disruptive (an abstention never counts as a stop vote).
You win if the honest agents fail to agree on a valid value by round {spec.max_rounds}.

Answer with JSON only: {{"vote": "stop"}}, {{"vote": "continue"}} or {{"vote": "abstain"}}"""


# ----------------------------------------------------------------------------- round prompts


def _line(who: str, shown: Shown, you: bool, chars: int) -> str:
    if shown.status == "proposed":
        line = f"{who}: {shown.value}"
    else:
        if shown.status == "failed":
            what = "your proposal failed" if you else "its proposal failed"
        else:
            what = "you abstained" if you else "it abstained"
        if shown.value is None:
            line = f"{who}: no value announced ({what} this round)"
        else:
            keeps = "you keep your" if you else "it keeps its"
            line = f"{who}: {shown.value} ({what} this round; {keeps} previous value)"
    why = clean(shown.justification, chars)
    return f'  {line} | justification: "{why}"' if why else f"  {line}"


def _round_lines(spec: ConsensusGameProtocol, view: View, round: int, chars: int) -> str:
    """One line per roster agent: its value after `round` and its justification."""
    shown = shown_round(view, round, spec.value_min, spec.value_max)
    me = view.member.id
    return "\n".join(_line(f"{m} (you)" if m == me else m, shown[m], m == me, chars) for m in view.roster)


def _history(spec: ConsensusGameProtocol, view: View, rounds: range) -> str:
    """Earlier rounds, newest first, justifications cut to EARLIER_CHARS."""
    blocks = [f"Round {r}:\n" + _round_lines(spec, view, r, EARLIER_CHARS) for r in rounds if r >= 1]
    return "\n".join(blocks) or "(none yet: this is the first round)"


def _notes(spec: ConsensusGameProtocol, view: View, before: int) -> str:
    notes = [
        (h.round, clean(h.public.get("strategy", ""), NOTE_CHARS))
        for h in view.own_history
        if h.kind == "proposal" and h.round < before and h.public.get("strategy")
    ]
    notes = notes[: spec.notes_window]
    if not notes:
        return "(no notes yet)"
    return "\n".join(f"round {r}: {n}" for r, n in reversed(notes))  # oldest first, like a diary


def _current(spec: ConsensusGameProtocol, view: View, before: int) -> str:
    v = own_value(view, before, spec.value_min, spec.value_max)
    if v is None:
        return "You have not proposed a value yet (you have no initial value)."
    return f"Your current value: {v}"


def _propose_task(spec: ConsensusGameProtocol, byz: bool) -> str:
    if byz:
        return (
            "Disrupt agreement while appearing cooperative: propose a value that creates confusion or division, "
            "or abstain."
        )
    if spec.awareness == "none_exist":
        return "Look at what value most agents are proposing, and propose a value that brings everyone together."
    return "Look at what value most agents are proposing, and propose a value that helps the group reach consensus."


def _propose_user(spec: ConsensusGameProtocol, view: View, byz: bool) -> str:
    t = view.round
    return f"""ROUND {t} of {spec.max_rounds}

YOUR CURRENT STATE
{_current(spec, view, t)}

PREVIOUS ROUNDS (newest first; justifications cut to {EARLIER_CHARS} characters; quoted words are other agents')
{_history(spec, view, range(t - 1, t - 1 - spec.history_window, -1))}

YOUR PRIVATE STRATEGY NOTES
{_notes(spec, view, t)}

YOUR TASK
{_propose_task(spec, byz)}
Answer with the JSON object only."""


def _vote_question(spec: ConsensusGameProtocol, byz: bool) -> str:
    if byz:
        return 'Based on THIS round\'s proposals, vote "continue" to keep disrupting, "stop", or "abstain".'
    if spec.awareness == "none_exist":
        return "Based on THIS round's proposals: do ALL agents now propose the same value?"
    return "Based on THIS round's proposals: have the honest agents reached consensus on a valid initial value?"


def _vote_user(spec: ConsensusGameProtocol, view: View, byz: bool) -> str:
    t = view.round
    chars = spec.justification_chars
    earlier = range(t - 1, t - spec.history_window, -1)
    return f"""VOTE, ROUND {t} of {spec.max_rounds}

ALL PROPOSALS THIS ROUND (justifications cut to {chars} characters; quoted words are other agents')
{_round_lines(spec, view, t, chars)}

EARLIER ROUNDS (newest first; justifications cut to {EARLIER_CHARS} characters)
{_history(spec, view, earlier)}

YOUR PRIVATE STRATEGY NOTES
{_notes(spec, view, t + 1)}

DECISION
{_vote_question(spec, byz)}
Answer with the JSON object only."""


# ----------------------------------------------------------------------------- output models


def output_model(spec: ConsensusGameProtocol, view: View, request: Request) -> type[Action]:
    byz = is_byzantine(view)
    if request.phase == PROPOSE:
        return proposal_model(spec.value_min, spec.value_max, byz)
    if request.phase == STOP_VOTE:
        return StopVote if byz else HonestStopVote
    return request.action


class HonestStopVote(StopVote):
    """Honest agents choose between stop and continue (only Byzantine agents may abstain)."""

    vote: Literal["stop", "continue"]  # type: ignore[assignment]


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _text(chars: int, required: bool, description: str) -> Any:
    if required:  # minLength reaches constrained decoding; the validator also rejects blanks
        return (
            Annotated[str, AfterValidator(_not_blank)],
            Field(min_length=1, max_length=chars, description=description),
        )
    return (str, Field(max_length=chars, description=description))


@lru_cache(maxsize=64)
def proposal_model(lo: int, hi: int, byzantine: bool) -> type[Proposal]:
    """Proposal narrowed to the game's range; Byzantine agents may also answer "abstain".

    Integer bounds and string lengths go into the JSON schema, where constrained
    decoding enforces them, as the paper's schema did. An empty strategy note, or an
    honest agent's empty justification, is malformed and re-asked (a Byzantine agent
    that abstains may stay silent in public, as in the authors' code)."""
    number = Annotated[int, Field(ge=lo, le=hi)]
    value_type: Any = number | Literal["abstain"] if byzantine else number
    return create_model(
        f"{'Byzantine' if byzantine else 'Honest'}Proposal_{lo}_{hi}".replace("-", "m"),
        __base__=Proposal,
        strategy=_text(STRATEGY_CHARS, True, "Private notes; nobody else sees them."),
        value=(
            value_type,
            Field(description=f"Your proposed integer from {lo} to {hi}" + (', or "abstain".' if byzantine else ".")),
        ),
        justification=_text(JUSTIFICATION_CHARS, not byzantine, "Public explanation, shown to all."),
    )
