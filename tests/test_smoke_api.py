from tests.support.factories import tiny_pdf


def test_clerk_registers_an_outgoing_document_and_uploads_its_pdf(client, province):
    clerk = province["clerk"]
    doc = client.post("/documents", json={"direction": "outgoing", "doc_type": "chi_thi",
                                          "subject": "Về tăng cường công tác phòng, chống lụt bão"},
                      headers=clerk.headers)
    assert doc.status_code == 201, doc.text
    doc_id = doc.json()["id"]
    reg = client.post(f"/documents/{doc_id}/register", headers=clerk.headers)
    assert reg.status_code == 200, reg.text
    assert reg.json()["number_symbol"] == "01/CT-STTTT"
    pdf = tiny_pdf()
    up = client.post(f"/documents/{doc_id}/versions?filename=chi-thi.pdf", content=pdf,
                     headers={**clerk.headers, "Content-Type": "application/pdf"})
    assert up.status_code == 201, up.text
    got = client.get(f"/documents/{doc_id}/versions/1/content", headers=clerk.headers)
    assert got.status_code == 200 and got.content == pdf


def test_timestamps_carry_their_zone_on_every_database(client, province):
    clerk = province["clerk"]
    doc = client.post("/documents", json={"direction": "internal", "doc_type": "bien_ban",
                                          "subject": "Biên bản họp giao ban"}, headers=clerk.headers).json()
    me = client.get("/auth/me", headers=clerk.headers).json()
    for value in (doc["created_at"], me["created_at"]):
        assert value.endswith(("Z", "+00:00")), value
