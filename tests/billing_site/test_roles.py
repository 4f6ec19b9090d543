from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from billing_site.roles import OPERATOR, VIEWER


@pytest.fixture
def staff(db):
    def make(role: str) -> User:
        user = User.objects.create_user(role.split()[-1], password="pw", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


def test_a_viewer_reads_but_cannot_create(client, staff):
    client.force_login(staff(VIEWER))
    assert client.get("/admin/invoicing/customer/").status_code == 200
    assert client.get("/admin/metering/meter/").status_code == 200
    assert client.get("/admin/catalog/price/").status_code == 200
    assert client.get("/admin/invoicing/customer/add/").status_code == 403
    response = client.post("/admin/invoicing/customer/add/", {"name": "Sneaky", "metadata": "{}"})
    assert response.status_code == 403
    from invoicing.models import Customer

    assert not Customer.objects.exists()


def test_an_operator_creates_but_cannot_delete(client, staff):
    user = staff(OPERATOR)
    client.force_login(user)
    assert user.has_perm("invoicing.add_customer")
    assert user.has_perm("catalog.change_price")
    assert not user.has_perm("invoicing.delete_customer")
    assert client.get("/admin/invoicing/customer/add/").status_code == 200
