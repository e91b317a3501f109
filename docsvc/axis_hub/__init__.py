"""The interlink-axis hub (``docsvc axis-hub``): a separate service with its own database that
connects the agencies of one province and speaks the API of ``inter_axis.client``."""
