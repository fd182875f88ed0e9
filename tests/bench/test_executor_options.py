"""The Ray executor's numeric options are checked (one line naming the option) before Ray is
even imported; threads=0 was silently the driver's thread count."""

import pytest

from t2mbench.bench.executors import get_executor
from t2mbench.core.errors import ConfigError


@pytest.mark.parametrize("options, message", [
    ({"threads": 0}, "executor 'ray': threads must be an integer >= 1, got 0"),
    ({"threads": 1.5}, "executor 'ray': threads must be an integer >= 1, got 1.5"),
    ({"num_cpus": -2}, "executor 'ray': num_cpus must be an integer >= 1, got -2"),
    ({"cpus_per_cell": 0}, "executor 'ray': cpus_per_cell must be a finite number > 0, got 0"),
    ({"cpus_per_cell": "one"}, "executor 'ray': cpus_per_cell must be a finite number > 0, got 'one'"),
])  # fmt: skip
def test_bad_ray_options_are_one_line(options, message):
    with pytest.raises(ConfigError) as e:
        get_executor("ray", **options)
    assert str(e.value) == message
