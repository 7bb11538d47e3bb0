"""Property-based run of the API against its own OpenAPI document (schemathesis): for every
operation, generated requests, valid and invalid, never get a server error.

Bounded: a few examples per operation and mode, no deadline (the ledger is real), with the
creditor in the path fixed to the token's one (and the account to a real one half of the
time) so that requests reach the services instead of stopping at the scope check. The
operations are driven from one test per backend with Hypothesis directly
(``APIOperation.as_strategy``). ``make test`` runs 4 examples per operation and mode, about a
third of the suite's longest test before; ``make fuzz`` runs SEPA_ENGINE_API_FUZZ_EXAMPLES (200).
(schemathesis 4.32's own pytest loader,
``from_fixture``, fails under pytest 9 on ``request.node._nodeid``.)
"""

from __future__ import annotations

import os

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, openapi
from schemathesis.checks import not_a_server_error

from tests.api.conftest import Api

EXAMPLES = int(os.environ.get("SEPA_ENGINE_API_FUZZ_EXAMPLES", "4"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
)


def test_generated_requests_never_get_a_server_error(api: Api) -> None:
    schema = openapi.from_asgi("/openapi.json", api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 27
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(api, operation, mode)


def _run(api: Api, operation, mode: GenerationMode) -> None:  # type: ignore[no-untyped-def]
    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode), real_account=st.booleans())
    def check(case, real_account: bool) -> None:  # type: ignore[no-untyped-def]
        if case.path_parameters and "creditor" in case.path_parameters:
            case.path_parameters["creditor"] = "pressimmo"
            if real_account and "account" in case.path_parameters:
                case.path_parameters["account"] = "AG-1"
        response = case.call(headers=api.auth("write"))
        case.validate_response(response, checks=[not_a_server_error])

    try:
        check()
    except Unsatisfiable:
        # An operation with nothing to get wrong (no parameter, no body) has no negative case.
        assert mode is GenerationMode.NEGATIVE

