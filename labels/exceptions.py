from core.errors import InvalidInput


class InvalidBarcode(InvalidInput):
    """A scan or a label's data that is not a usable GS1 barcode. The message says what is wrong."""

    code = "invalid_barcode"
