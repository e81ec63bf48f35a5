from tests.conftest import ny


def test_monthly_row_is_bought_once_on_its_day(make_rig):
    rig = make_rig("Active,VTI,1000,Monthly,,v1\n")
    report = rig.run(ny(2026, 12, 1, 9, 0, 30))
    assert [(e.symbol, str(e.status)) for e in report.executions] == [("VTI", "filled")]
    again = rig.run(ny(2026, 12, 1, 9, 30))
    assert again.executions == []
    assert len(rig.broker.orders()) == 1
