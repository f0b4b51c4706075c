from django.core.management.base import BaseCommand, CommandError

from inventory.catalog.loader import CATALOG_PATH, CatalogError, load_catalog


class Command(BaseCommand):
    help = "Load the product catalog (manufacturers, products, GTIN presentations). Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--path", help=f"catalog file to load (default: {CATALOG_PATH})")

    def handle(self, *args, path=None, **options):
        try:
            counts = load_catalog(path=path)
        except CatalogError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Catalog loaded: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged."
        )
