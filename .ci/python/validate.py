"""Validate documents for fleetauth's tests; exit 0 when every one is valid, 1 (with the
errors on stdout) when one is not, 2 on a usage error or a broken schema.

  validate.py json SCHEMA_DIR NAME DOC...   DOC against SCHEMA_DIR/NAME.schema.json
                                            (every *.schema.json there is a $ref target)
  validate.py xsd XSD DOC...                DOC against the XML Schema XSD
"""
import json
import pathlib
import sys


def json_mode(schema_dir, name, docs):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = {}
    for path in sorted(pathlib.Path(schema_dir).glob("*.schema.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        schemas[path.name[: -len(".schema.json")]] = schema
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    validator = Draft202012Validator(schemas[name], registry=registry)
    failed = False
    for doc in docs:
        instance = json.loads(pathlib.Path(doc).read_text())
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
            failed = True
            where = "/".join(str(p) for p in error.absolute_path)
            print(f"{doc}: /{where}: {error.message}")
    return 1 if failed else 0


def xsd_mode(xsd, docs):
    import xmlschema

    schema = xmlschema.XMLSchema10(xsd)
    failed = False
    for doc in docs:
        for error in schema.iter_errors(doc):
            failed = True
            print(f"{doc}: {error.path}: {error.reason}")
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 4 and argv[0] == "json":
        return json_mode(argv[1], argv[2], argv[3:])
    if len(argv) >= 3 and argv[0] == "xsd":
        return xsd_mode(argv[1], argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
