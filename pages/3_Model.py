"""Model: the model card, its test figures and input contract."""

from pathlib import Path

import pandas as pd
import streamlit as st

from ui.charts import confusion_heatmap
from ui.session import get_classifier, show_error


st.title("The model")

try:
    clf = get_classifier()
except Exception as exc:
    show_error(exc)
    st.stop()
meta = clf.meta
mode = "tta" if clf.tta else "plain"
m = meta.test_metrics.get(mode, {})
report = meta.test_metrics.get("report", {})
c = st.columns(4)
c[0].metric("Test accuracy", f"{100 * m.get('accuracy', float('nan')):.2f}%", help=f"{m.get('n_images')} held-out EuroSAT images")
c[1].metric("Calibration error (ECE)", f"{m.get('ece_after', float('nan')):.3f}",
            help=f"15 bins, after temperature scaling (before: {m.get('ece_before', float('nan')):.3f})")
c[2].metric("Architecture", f"{meta.architecture}", help=f"{meta.stem} stem, trained from scratch: "
                                                  + " + ".join(str(c.get("epochs")) for c in meta.training_cycles)
                                                  + f" epochs in {len(meta.training_cycles)} cycle(s)")
c[3].metric("Test-time augmentation", "8 flips/rotations" if clf.tta else "off")

st.subheader("Input contract")
st.markdown(f"- Bands (in channel order): **{', '.join(meta.bands)}** picked by name from Level-1C digital numbers\n"
            f"- Recipe: {meta.recipe}\n"
            f"- Normalisation: mean {', '.join(f'{v:.3f}' for v in meta.norm_mean)}, std {', '.join(f'{v:.3f}' for v in meta.norm_std)} (on 0..1)\n"
            f"- Calibration: temperature {clf.temperature:.3f}\n- Classes: {', '.join(meta.class_names)}")

if report:
    left, right = st.columns(2)
    with left:
        st.subheader("Per class (test part)")
        st.dataframe(pd.DataFrame(report["per_class"]).T.style.format(
            {"precision": "{:.3f}", "recall": "{:.3f}", "f1": "{:.3f}", "support": "{:.0f}"}), width="stretch")
    with right:
        st.subheader("Confusion matrix")
        st.plotly_chart(confusion_heatmap(report["confusion_matrix"], meta.class_names), width="stretch")

card = Path(__file__).resolve().parent.parent / "docs" / "MODEL_CARD.md"
if card.exists():
    with st.expander("Full model card", expanded=False):
        st.markdown(card.read_text())
