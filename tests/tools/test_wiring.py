"""Tests of how the tools are wired: clients name their worker side, never import it."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys

from bot.tools.calculator import calculator
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting import plotter
from bot.tools.plotting.plotter import Plotter
from bot.workers import pool as workers


def test_named_worker_functions_are_the_worker_modules_functions() -> None:
    from bot.tools.calculator import evaluate
    from bot.tools.plotting import draw

    assert calculator.EVALUATE.resolve() is evaluate.evaluate_source
    assert calculator.WARM_UP.resolve() is evaluate.warm_up
    assert plotter.RENDER.resolve() is draw.render_request
    assert plotter.WARM_UP.resolve() is draw.warm_up


def test_a_worker_function_is_pickled_as_its_names() -> None:
    data = pickle.dumps(calculator.EVALUATE)
    assert pickle.loads(data) == calculator.EVALUATE
    assert b"sympy" not in data


def test_worker_modules_exist_and_the_plotter_needs_the_calculators_too() -> None:
    for module in plotter.worker_modules():
        assert importlib.util.find_spec(module) is not None, module
    assert set(calculator.worker_modules()) < set(plotter.worker_modules())


def test_the_fork_server_preloads_the_modules_of_every_pool_made() -> None:
    Calculator()
    Plotter()
    assert set(plotter.worker_modules()) <= set(workers._forkserver_preload)


def test_the_bot_side_of_the_tools_loads_neither_sympy_nor_matplotlib() -> None:
    code = (
        "import sys\n"
        "import bot.tools.calculator.tool, bot.tools.plotting.tool\n"
        "from bot.tools.calculator.calculator import Calculator\n"
        "from bot.tools.plotting.plotter import Plotter\n"
        "Calculator(), Plotter()\n"
        "print(sorted({'sympy', 'matplotlib', 'numpy'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
