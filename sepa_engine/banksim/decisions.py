"""What the simulated bank does with each transaction: seeded draws, reproducible.

The draws come from one ``random.Random`` seeded from the caller's seed and the file's
MsgId, never from the process's own randomness, so the same file, rates and seed always
give the same answers. Every transaction consumes the same five draws whatever happens to
it: which transactions are rejected then depends only on the seed and the reject rate,
and raising a rate only adds R-transactions to those a lower rate picked.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
from dataclasses import dataclass
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


class Bank:
    """Decides, transaction after transaction in file order, what the bank answers."""

    def __init__(self, rates: Rates, seed: int, message_id: str) -> None:
        self._rates = rates
        self._draw = random_for(seed, message_id).random

    def decide(self) -> Decision:
        draw = self._draw
        reject, returned, code, days, fee = draw(), draw(), draw(), draw(), draw()
        if reject < self._rates.reject:
            return Decision(Outcome.REJECTED, _REJECTS.pick(code))
        if returned < self._rates.return_:
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
