"""What the simulated bank does with each transaction: exact counts, seeded picks.

The rates fix how many transactions are answered so, not a chance per transaction: of
``n`` transactions, ``round(reject_rate * n)`` are rejected and ``round(return_rate *
settled)`` of the settled ones returned (halves round up), so ``--reject-rate 0.34`` on a
3-transaction demo file rejects exactly 1. Which ones is drawn: every transaction gets
the same five draws from one ``random.Random`` seeded from the caller's seed and the
file's MsgId (never the process's own randomness); the rejected are those with the
smallest reject draws, the returned those settled with the smallest return draws (ties
go to the earlier transaction). So the same file, rates and seed always give the same
answers, and raising a rate only adds R-transactions to those a lower rate picked.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from sepa_engine import errors

# (code, weight). Illustrative weights: insufficient funds dominates in practice, deaths
# and debtor-bank blocks are rare. Every code is in domain.reason_codes with the R-type it
# is drawn for here (a test keeps them in step).
REJECT_CODES: tuple[tuple[str, int], ...] = (
    ("AM04", 30),
    ("AC01", 15),
    ("AC04", 15),
    ("MS02", 15),
    ("MD01", 10),
    ("AC06", 10),
    ("AG01", 5),
)
RETURN_CODES: tuple[tuple[str, int], ...] = (
    ("AM04", 45),
    ("MS03", 15),
    ("MD06", 15),  # a refund the debtor asked for, booked like a return here
    ("AC04", 12),
    ("SL01", 8),
    ("MD07", 5),
)
# Returns are booked D+2 to D+5 TARGET days (the scheme's return window ends at D+5).
RETURN_DAYS = (2, 5)
# Share of returns on which the creditor's bank charges a fee, and the fees it charges.
FEE_SHARE = 0.5
RETURN_FEES_CENTS: tuple[int, ...] = (250, 300, 350, 500)


class Outcome(StrEnum):
    SETTLED = "settled"
    REJECTED = "rejected"
    # Settled, then returned (or refunded) by the debtor's bank.
    RETURNED = "returned"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason_code: str | None = None
    # TARGET days after the collection date on which a return is booked.
    return_days: int = 0
    fee_cents: int = 0


SETTLED = Decision(Outcome.SETTLED)


@dataclass(frozen=True, slots=True)
class Rates:
    """``reject``: share of all transactions; ``return_``: share of the settled ones, so any
    two rates between 0 and 1 make sense together."""

    reject: float
    return_: float

    def __post_init__(self) -> None:
        _check_rate("--reject-rate", self.reject)
        _check_rate("--return-rate", self.return_)


def _check_rate(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.ConfigurationError(name, repr(value), "must be a number between 0 and 1")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise errors.ConfigurationError(name, value, "must be between 0 and 1")


class _Table:
    """Weighted codes picked by one uniform draw (integer weights, exact cut points)."""

    def __init__(self, codes: tuple[tuple[str, int], ...]) -> None:
        self.codes = tuple(code for code, _ in codes)
        self._cumulative = tuple(itertools.accumulate(weight for _, weight in codes))

    def pick(self, u: float) -> str:
        return self.codes[bisect.bisect_right(self._cumulative, u * self._cumulative[-1])]


_REJECTS = _Table(REJECT_CODES)
_RETURNS = _Table(RETURN_CODES)


def random_for(seed: int, message_id: str) -> random.Random:
    # Mixing in the MsgId gives two files run with the same seed different answers.
    digest = hashlib.sha256(f"sepa-engine banksim\n{seed}\n{message_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def exact_count(rate: float, total: int) -> int:
    """``rate * total`` rounded half up, computed in decimal so 0.5 * 3 gives 2, not 1."""
    return int((Decimal(repr(float(rate))) * total).to_integral_value(rounding=ROUND_HALF_UP))


class _Cut:
    """The ``count`` smallest of a sequence of draws, told apart as the sequence is replayed.

    ``below`` is the largest draw taken; draws equal to it are taken first come, first
    served until ``count`` is reached, so the count is exact even on ties."""

    def __init__(self, draws: Sequence[float], count: int) -> None:
        self._left = count
        if count <= 0:
            self._below, self._ties = -1.0, 0
        else:
            chosen = sorted(draws)[count - 1]
            self._below = chosen
            self._ties = count - sum(1 for d in draws if d < chosen)

    def takes(self, draw: float) -> bool:
        if self._left <= 0 or draw > self._below:
            return False
        if draw == self._below:
            if self._ties <= 0:
                return False
            self._ties -= 1
        self._left -= 1
        return True


class Bank:
    """Decides, transaction after transaction in file order, what the bank answers about
    a file of ``count`` transactions (the count its group header declares)."""

    def __init__(self, rates: Rates, seed: int, message_id: str, count: int) -> None:
        self._draw = random_for(seed, message_id).random
        # First pass over the draws alone: which ranks are rejected, then returned.
        replay = random_for(seed, message_id).random
        # Arrays: 16 bytes a transaction, whatever the file's size.
        rejects: array[float] = array("d")
        returns: array[float] = array("d")
        for _ in range(count):
            reject, returned, _code, _days, _fee_draw = replay(), replay(), replay(), replay(), replay()
            rejects.append(reject)
            returns.append(returned)
        rejected = exact_count(rates.reject, count)
        self._rejects = _Cut(rejects, rejected)
        preview = _Cut(rejects, rejected)
        settled_draws = [r for j, r in zip(rejects, returns, strict=True) if not preview.takes(j)]
        self._returns = _Cut(settled_draws, exact_count(rates.return_, count - rejected))

    def decide(self) -> Decision:
        draw = self._draw
        reject, returned, code, days, fee = draw(), draw(), draw(), draw(), draw()
        if self._rejects.takes(reject):
            return Decision(Outcome.REJECTED, _REJECTS.pick(code))
        if self._returns.takes(returned):
            low, high = RETURN_DAYS
            return Decision(
                Outcome.RETURNED,
                _RETURNS.pick(code),
                return_days=low + int(days * (high - low + 1)),
                fee_cents=_fee(fee),
            )
        return SETTLED


def _fee(u: float) -> int:
    if u >= FEE_SHARE:
        return 0
    return RETURN_FEES_CENTS[int(u / FEE_SHARE * len(RETURN_FEES_CENTS))]
