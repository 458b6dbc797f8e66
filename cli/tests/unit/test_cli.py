from delego_cli.main import app
from delego_shared.http.auth import verify_token
from delego_shared.settings import Settings
from typer.testing import CliRunner

runner = CliRunner()


def test_token_mints_a_jwt_the_services_accept():
    result = runner.invoke(app, ["token", "operator", "op-1"])
    assert result.exit_code == 0
    who = verify_token(Settings(), result.output.strip())
    assert (who.subject, who.role.value) == ("op-1", "operator")


def test_token_refuses_an_unknown_role():
    result = runner.invoke(app, ["token", "admin", "x"])
    assert result.exit_code == 2
    assert "admin" in result.output


def test_contracts_check_passes_on_the_committed_catalogue():
    result = runner.invoke(app, ["contracts", "check"])
    assert result.exit_code == 0, result.output


def test_token_refuses_a_lifetime_the_services_would_refuse():
    result = runner.invoke(app, ["token", "operator", "op-1", "--hours", "48"])
    assert result.exit_code == 2
    assert "exceeds" in result.output
