def test_smoke(login):
    b = login("jinan")
    r = b.get("/admin/")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
