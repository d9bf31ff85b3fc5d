"""Mapping checks in a worker process: ``check --mapping`` and ``check --op`` run each
mapping (a user's module, a plug-in provider's operator) in a child interpreter, so
that one which exits (with any status, 0 included), crashes, hangs or floods its
output is that mapping's CRASHED or TIMEOUT and the run goes on; the harness's own
exit status and report stay its own.

The child loads the mapping, lists its cases and runs the mapping checks on one case
per request; it answers with plain JSON (the results' ``to_dict``), which the parent
validates field by field: nothing is unpickled or executed. Unlike an MLP
implementation, whose answers the parent judges, a mapping is judged where it runs:
the oracle evaluates its forward thousands of times, too many calls to send across.
So the child's verdicts are trusted as far as the mapping's code is (a mapping that
rewrites the harness inside its own process could forge them, as it could in process);
what the worker guarantees is that no exit, crash, hang or flood passes for a result.

    parent -> {"id", "kind": "plan", "target": {"mapping": "module:attr"} | {"op", "provider"}
                                               | {"model": the network, as_plain, "provider"},
               "dtype", "seed", "size", "case_file"}
    child  -> {"id", "success": true, "name", "cases": [{"dtype", "case", "why"}]}
              | {"id", "success": false, "refused": true, "error"}   (the user's input is wrong)
    parent -> {"id", "kind": "check", "index", "probes", "second_order"}
    child  -> {"id", "success": true, "results": [CheckResult.to_dict(), ...],
               and for a model, where its case failed: "found": the localisation's summary,
               "links": [{"name", "case", "results"}] (the nodes to blame, checked as the
               activations flowed)}

A ``model`` target is a built-in network (``check --model``) run with one operator
provider's operators: checked end to end, and where a case fails, localised node by
node (``harness.checks.localisation``) in the child, where the operators are.

    python -m harness.executors.mapping_worker      (spoken to on stdin/stdout)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from harness.core.out_of_process import ImplementationGone
from harness.workers.wire import ProtocolError

PROGRAM = [sys.executable, "-m", "harness.executors.mapping_worker"]


# --- the parent ------------------------------------------------------------------------


class MappingWorker:
    """One mapping served by a child interpreter (started again after it dies)."""

    def __init__(self, target: dict, label: str, *, timeout: float, select: dict):
        self.target, self.label, self.timeout, self.select = target, label, timeout, select
        self.name, self.cases, self._process, self._next_id = label, [], None, 0

    def _request(self, message: dict, phase: str) -> dict:
        self._next_id += 1
        line = (json.dumps({"id": self._next_id, **message}) + "\n").encode()
        answer = self._process.request(line, [], timeout=self.timeout, phase=phase, limit=1 << 26)
        if answer.get("id") != self._next_id or not isinstance(answer.get("success"), bool):
            self._process.kill()
            raise ProtocolError(f"{phase}: an answer without this request's id or a success flag")
        return answer

    def start(self) -> None:
        """Start the child and load the mapping: ``ValueError`` for the user's wrong input
        (said as in process), ``ImplementationGone``/``ProtocolError`` for a child that
        dies, hangs or breaks the protocol while loading."""
        from harness.workers import process
        from harness.workers.remote import python_environment

        self._process = process.WorkerProcess(PROGRAM, env=python_environment(1))
        answer = self._request({"kind": "plan", "target": self.target, **self.select}, "loading the mapping")
        if not answer["success"]:
            self.close()
            error = str(answer.get("error", "the mapping could not be loaded"))
            if answer.get("refused") is True:
                raise ValueError(error)
            raise MappingBroken(f"loading it failed: {error}")
        name, cases = answer.get("name"), answer.get("cases")
        if not isinstance(name, str) or not isinstance(cases, list) or not all(
                isinstance(c, dict) and isinstance(c.get("dtype"), str) and isinstance(c.get("why"), str)
                and (c.get("case") is None or isinstance(c.get("case"), str)) for c in cases):
            self._process.kill()
            raise ProtocolError("the plan is not {name, cases: [{dtype, case, why}]}")
        self.name, self.cases = name, cases

    def check(self, index: int, *, probes: int, second_order: bool, checks=None) -> list:
        """The results of the mapping checks (every one, or those named in ``checks``)
        on case ``index``, as ``CheckResult``s."""
        return self.check_case(index, probes=probes, second_order=second_order, checks=checks).results

    def check_case(self, index: int, *, probes: int, second_order: bool, checks=None) -> Checked:
        """``check``'s results, with a model's localisation when its case failed."""
        answer = self._request({"kind": "check", "index": index, "probes": probes, "second_order": second_order,
                                **({"checks": list(checks)} if checks else {})}, f"checking case {index}")
        results, links, found = answer.get("results"), answer.get("links", []), answer.get("found")
        if not answer["success"]:
            raise MappingBroken(f"the checks stopped: {answer.get('error', 'no reason given')}")
        if not isinstance(results, list) or (checks and len(results) != len(checks)):
            self._process.kill()
            raise ProtocolError("an answer without a list of results, one per check asked for")
        if not (isinstance(links, list) and all(isinstance(k, dict) and isinstance(k.get("name"), str)
                                                 and isinstance(k.get("case"), str) and isinstance(k.get("results"), list)
                                                 for k in links) and (found is None or isinstance(found, str))):
            self._process.kill()
            raise ProtocolError("a localisation that is not {found: text, links: [{name, case, results}]}")
        try:
            return Checked(self._results(results), [(k["name"], k["case"], self._results(k["results"])) for k in links],
                           found)
        except (TypeError, ValueError, KeyError) as exc:
            self._process.kill()
            raise ProtocolError(f"a result that is not a CheckResult: {exc}") from None

    @staticmethod
    def _results(plain: list) -> list:
        from harness.executors.tasks import result_from_dict

        return [result_from_dict(r) for r in plain]

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None


@dataclass
class Checked:
    """One case's results; for a model whose case failed, ``links`` (``(name, case,
    results)`` of each node blamed, checked on what flowed into it) and ``found`` (the
    localisation's one-line summary)."""

    results: list
    links: list = field(default_factory=list)
    found: str | None = None


class MappingBroken(Exception):
    """The mapping raised or exited while it was loaded or checked: its ERROR."""


# what ends a mapping's worker (or its answer): the run goes on, with this as its verdict
LOST = (ImplementationGone, ProtocolError, MappingBroken)


def mapping_task(target: dict, label: str, *, timeout: float, select: dict, probes: int, second_order: bool) -> dict:
    """One mapping's checks as a plain task for an executor (``run_mapping_task``)."""
    return {"target": dict(target), "label": label, "timeout": float(timeout), "select": dict(select),
            "probes": int(probes), "second_order": bool(second_order)}


def run_mapping_task(task: dict) -> dict:
    """Every case of one mapping, in a worker process started where the task runs (a
    thread of the harness, a Dask worker): ``{"impl": name, "runs": [{"case", "note",
    "results": [CheckResult.to_dict()]}], "found": [line]}``, the shape of
    ``executors.tasks``'s results (an executor's lost task comes back as
    ``infra_result``, the same shape); a run of a model's node blamed for a failure
    names it (``"impl"``), and ``found`` says what the localisation found. A
    module:attr that names nothing raises ``ValueError`` (the user's input)."""
    from harness.core.results import CheckResult, Verdict

    label = task["label"]

    def lost(run_name, case, exc, check):
        verdict = exc.verdict if isinstance(exc, ImplementationGone) else Verdict.ERROR
        return {"case": case, "note": "", "results": [CheckResult(check, run_name, case, verdict, str(exc)).to_dict()]}

    runs, found = [], []
    worker = MappingWorker(task["target"], label, timeout=task["timeout"], select=task["select"])
    try:
        try:
            worker.start()
        except LOST as exc:
            return {"impl": label, "runs": [lost(label, "-", exc, "load")]}
        for index, case in enumerate(worker.cases):
            if case["case"] is None:
                why = case["why"]
                runs.append({"case": case["dtype"], "note": why, "results": [
                    CheckResult("applicable", worker.name, case["dtype"], Verdict.FAIL, f"asked for, but {why}").to_dict()]})
                continue
            try:
                if not worker.alive():
                    worker.start()  # the last case killed it: a fresh one, same plan
                checked = worker.check_case(index, probes=task["probes"], second_order=task["second_order"])
                runs.append({"case": case["case"], "dtype": case["dtype"], "note": "",
                             "results": [r.to_dict() for r in checked.results]})
                runs += [{"impl": name, "case": where, "dtype": case["dtype"], "note": "",
                          "results": [r.to_dict() for r in results]} for name, where, results in checked.links]
                if checked.found:
                    found.append(f"{worker.name} on {case['case']}: {checked.found}")
            except LOST as exc:
                runs.append(lost(worker.name, case["case"], exc, "checks"))
                worker.close()
    finally:
        worker.close()
    return {"impl": worker.name, "runs": runs, "found": found}


# --- the child -------------------------------------------------------------------------


def _load(target: dict):
    """``(mapping, its nodes' cases or None)`` for ``target``."""
    from harness import ops
    from harness.core.mapping import load_mapping

    if "mapping" in target:
        return load_mapping(target["mapping"]), None
    if "model" in target:
        from harness.networks.cnn import from_plain
        from harness.networks.end_to_end import network_mapping, node_cases
        from harness.networks.providers import network_providers

        network = from_plain(target["model"])
        provider = network_providers(network, [target["provider"]])[0][target["provider"]]
        return (network_mapping(network, provider, provider_name=target["provider"]),
                lambda case: node_cases(network, provider, case))
    return ops.mapping(target["op"], target["provider"]), None


class _Served:
    def __init__(self):
        self.target, self.mapping, self.nodes, self.plan, self.case = None, None, None, [], None

    def plan_for(self, message: dict) -> dict:
        from harness.checks.mapping_runner import mapping_cases
        from harness.core.mapping_cases import load_mapping_case

        self.target = message["target"]
        try:
            self.mapping, self.nodes = _load(self.target)
        except ValueError as exc:  # the user's module:attr names nothing usable: their input
            return {"success": False, "refused": True, "error": str(exc)}
        case_file = message.get("case_file")
        if case_file:
            self.case = load_mapping_case(case_file)
            if message.get("seed"):
                self.case.seed = message["seed"]
            self.plan = [(self.case.dtype, self.case, "")]
        else:
            self.plan = mapping_cases(self.mapping, message.get("dtype"), message.get("seed") or 0, message.get("size"))
        return {"success": True, "name": self.mapping.name,
                "cases": [{"dtype": d, "case": None if c is None else c.describe(), "why": why} for d, c, why in self.plan]}

    def check(self, message: dict) -> dict:
        from harness.checks.mapping_runner import MAPPING_CHECKS, check_mapping, mapping_check_name

        _, case, _ = self.plan[int(message["index"])]
        if self.nodes is not None:
            return self._check_model(case, int(message["probes"]))
        named = message.get("checks")
        checks = [c for c in MAPPING_CHECKS if mapping_check_name(c) in named] if named else MAPPING_CHECKS
        results = check_mapping(self.mapping, case, probes=int(message["probes"]), second_order=bool(message["second_order"]),
                                checks=checks)
        return {"success": True, "results": [r.to_dict() for r in results]}

    def _check_model(self, case, probes: int) -> dict:
        from harness.checks.localisation import check_chain

        checked = check_chain(self.mapping, self.nodes, case, probes=probes)
        answer = {"success": True, "results": [r.to_dict() for r in checked.results]}
        if checked.localisation is not None:
            provider = self.target["provider"]
            answer["found"] = checked.localisation.summary()
            answer["links"] = [{"name": f"{link.label} [{provider}]",
                                "case": f"{case.label}, as it flowed", "results": [r.to_dict() for r in link.results]}
                               for link in checked.localisation.culprits]
        return answer


def serve() -> int:
    from harness.workers import wire
    from harness.workers.python_worker import protect_channels

    proto_in, proto_out = protect_channels()
    served = _Served()
    while True:
        raw = wire.read_raw(proto_in)
        if raw is None:
            return 0
        message = raw[0]
        try:
            answer = served.plan_for(message) if message.get("kind") == "plan" else served.check(message)
        except BaseException as exc:  # noqa: BLE001 -- the mapping's failure (or exit) is said, not obeyed
            answer = {"success": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        # NaN and infinities (a failing result's errors) as JSON's NaN/Infinity tokens,
        # which the parent's json.loads reads back as floats
        line = json.dumps({"id": message.get("id"), **answer}, default=str)
        wire.write_message(proto_out, line.encode() + b"\n", [])


if __name__ == "__main__":
    sys.exit(serve())
