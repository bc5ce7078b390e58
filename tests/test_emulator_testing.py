"""The pytest plugin as a user's suite sees it: fresh state per test, marker and option overrides."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import httpx
import pytest

from parallel_tools.emulator import Emulator, EmulatorServer, Fault


def client(server: EmulatorServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key})


def test_dirty_everything(parallel_emulator):
    emulator = parallel_emulator.emulator
    emulator.add_fault(Fault(endpoint="retrieve", status=500, times=0))
    emulator.add_fixture("Hooli", "Founded in 1998.")
    emulator.configure(max_result_hold=1)
    with client(parallel_emulator) as c:
        assert c.post("/v1/tasks/runs", json={"input": "x", "processor": "lite"}).status_code == 202


def test_the_next_test_starts_clean(parallel_emulator):
    emulator = parallel_emulator.emulator
    assert emulator.faults == [] and len(emulator.runs) == 0 and not emulator.request_counts
    assert (emulator.time_scale, emulator.max_result_hold, emulator.api_keys) == (0.0001, None, None)
    with client(parallel_emulator) as c:
        run = c.post("/v1/tasks/runs", json={
            "input": "Hooli", "processor": "lite", "task_spec": {"output_schema": "Founding"}
        }).json()
        output = c.get(f"/v1/tasks/runs/{run['run_id']}/result").json()["output"]
        assert output["content"] != "Founded in 1998."


@pytest.mark.parallel_emulator(time_scale=0.5, api_keys=["team-key"])
def test_marker_options(parallel_emulator):
    assert parallel_emulator.emulator.time_scale == 0.5
    assert parallel_emulator.api_key == "team-key"
    assert parallel_emulator.env == {
        "PARALLEL_API_KEY": "team-key", "PARALLEL_BASE_URL": parallel_emulator.base_url
    }


class TestOverridingTheOptionsFixture:
    @pytest.fixture
    def parallel_emulator_options(self):
        return {"seed": 7, "time_scale": 0.2}

    def test_fixture_options(self, parallel_emulator):
        assert (parallel_emulator.emulator.seed, parallel_emulator.emulator.time_scale) == (7, 0.2)

    @pytest.mark.parallel_emulator(time_scale=0.3)
    def test_the_marker_wins(self, parallel_emulator):
        assert (parallel_emulator.emulator.seed, parallel_emulator.emulator.time_scale) == (7, 0.3)


def test_one_server_for_the_session(parallel_emulator):
    assert isinstance(parallel_emulator, EmulatorServer)
    assert isinstance(parallel_emulator.emulator, Emulator)
    assert parallel_emulator.base_url.startswith("http://127.0.0.1:")


@pytest.mark.parallel_emulator(12)
def test_positional_marker_arguments_are_refused(parallel_emulator):
    pass


@pytest.mark.parallel_emulator(warp_speed=9)
def test_unknown_options_are_refused(parallel_emulator):
    pass
"""


def test_the_plugin_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-q")
    result.assert_outcomes(passed=6, errors=2)
    result.stdout.fnmatch_lines(["*keyword options only*", "*Unknown emulator option*warp_speed*"])
