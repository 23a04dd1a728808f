"""Post-production charts: the bundled YAML standards, their schema and loader.

``load_chart("client_acme_realty")`` finds a chart, follows its ``extends``
chain (client -> specialty -> base), migrates each file to the current schema,
merges them and validates the result; see :mod:`charts.schema` for the model
and :mod:`charts.naming` for output names that cannot leave the output folder.
"""

from charts.loader import ChartEntry, ResolvedChart, list_charts, load_chart
from charts.naming import NamingTemplateError, output_path, render_name
from charts.schema import CHART_SCHEMA_VERSION, Chart, Rendition

__all__ = [
    "CHART_SCHEMA_VERSION",
    "Chart",
    "ChartEntry",
    "NamingTemplateError",
    "Rendition",
    "ResolvedChart",
    "list_charts",
    "load_chart",
    "output_path",
    "render_name",
]
