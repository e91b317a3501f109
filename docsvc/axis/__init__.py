"""Exchange over the national document interlink axis: outgoing delivery, incoming registration, statuses."""
