"""incidents: the model's incidents across all days and the mean times to detect and resolve them."""

import dagster as dg

from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import incident_records, num, table
from monitoring_pipelines.defs.resources import MetricStoreResource
from monitoring_pipelines.defs.steps import common, traced
from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.plan.schema import MonitoringPlan


def incident_overview_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(key=n.key(m, n.INCIDENTS), deps=[n.key(m, n.MODEL_HEALTH)], kinds={"sql"}, **common(plan))
    @traced(m, "incidents")
    def incident_overview(context, store: MetricStoreResource) -> dg.MaterializeResult:
        """The model's incidents across all days: the ones still open (or acknowledged) with their severity,
        segments and first and last breached day; how many are open, acknowledged and resolved; and the mean time
        to detect (end of the first breached day to opening) and to resolve (opening to resolution; also in
        monitored days). Refreshed after every nightly run. Acknowledge or resolve one with
        monitoring_pipelines.incidents.acknowledge / resolve."""
        live = incidents.incidents(store.store, m, states=("open", "acknowledged"))
        st = incidents.stats(store.store, m)
        return dg.MaterializeResult(
            metadata={
                "open": st.open,
                "acknowledged": st.acknowledged,
                "resolved": st.resolved,
                "open_critical": st.open_critical,
                "open_incident_list": table(incident_records(live)),
                "mean_time_to_detect_hours": _hours(st.mean_time_to_detect),
                "mean_time_to_resolve_hours": _hours(st.mean_time_to_resolve),
                "mean_days_to_resolve": num(st.mean_days_to_resolve),
            }
        )

    return incident_overview


def _hours(td) -> dg.MetadataValue:
    return num(None if td is None else td.total_seconds() / 3600)
