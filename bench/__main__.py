import warnings

# nameko 2.14 imports eventlet and pkg_resources, which both warn on import.
warnings.filterwarnings("ignore")

from bench.cli import main  # noqa: E402

main()
