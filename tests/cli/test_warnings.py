"""Warnings about the user's inputs and results are ``RegistrationWarning``s: one line each from the
commands, filterable like any warning in Python."""

import warnings

import pytest

from lightning_reg.errors import RegistrationWarning, one_line_warnings, warn


def test_the_commands_print_each_warning_as_one_line_and_leave_others_alone(capsys):
    with warnings.catch_warnings(record=True) as others:
        warnings.simplefilter("always")
        one_line_warnings("lightning-reg register")
        one_line_warnings("lightning-reg register")  # installed twice: still one line, not a chain
        warn("only 40% of a.nii.gz's field of view lies inside b.nii.gz's")
        warnings.warn("something else", DeprecationWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "lightning-reg register: warning: only 40% of a.nii.gz's field of view lies inside b.nii.gz's"
    )
    assert len(err.splitlines()) == 1  # one line, and only ours
    assert [str(caught.message) for caught in others] == ["something else"]  # passed on as Python shows it


def test_python_users_filter_them():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=RegistrationWarning)
        warn("hidden")
    assert not caught
    with pytest.warns(RegistrationWarning, match="shown"):
        warn("shown")
