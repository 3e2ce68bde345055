"""Model: the model card, its test figures and input contract."""

from ui import warm

warm.wait("pages")  # the map and chart packages, imported in the background (ui.warm)

from pathlib import Path

import pandas as pd
import streamlit as st

from lulc_core.model.cascades import refine_entry
from ui.charts import confusion_heatmap
from ui.session import get_classifier, get_dense_classifier, show_error


st.title("The model")

try:
    clf = get_classifier()
except Exception as exc:
    show_error(exc)
    st.stop()
meta = clf.meta
m = clf.test_figures()  # the mode the app runs (plain, or the TTA cascade)
report = meta.test_metrics.get("report", {})
try:  # the dense maps' agreement with the per-window model, as shipped (refine cascade), for the summary
    _refine = refine_entry(get_dense_classifier().sha256, clf.sha256) or {}
    _agree = _refine["held_out"]["dense_plus_refine"]
    maps_sentence = (f"Maps are drawn every 160 m by a fast copy of it, checked by the model itself where the copy is "
                     f"unsure; together they agree with the model on {100 * _agree['agreement']:.0f}% of squares of "
                     f"areas they never saw ({100 * _agree['agreement_both_confident']:.0f}% where both are "
                     "confident).")
except Exception:  # noqa: BLE001 - no shipped figure: say what the maps are without one
    maps_sentence = "Maps are drawn every 160 m by a fast copy of it (figures below)."
st.info(
    f"**In plain words.** The model looks at 640 m squares of Sentinel-2 imagery (red, green and blue only) and "
    f"says which of 10 land-cover classes each one looks most like: crops, forest, grass, roads, industry, "
    f"pasture, orchards, housing, rivers or sea and lakes. On EuroSAT images it never saw it is right "
    f"{100 * m.get('accuracy', float('nan')):.0f} times in 100, and its stated confidence can be taken at face "
    "value. It is least sure between the crop classes and between grass and crops; it knows nothing of "
    "clouds, snow, other countries' building styles or imagery other than Sentinel-2 Level-1C, and a square that "
    "mixes several covers gets mixed probabilities. " + maps_sentence + " Change is decided with 10 m spectral "
    "evidence too (see the Compare page).", icon=":material/info:")

c = st.columns(4)
c[0].metric("Test accuracy", f"{100 * m['accuracy']:.2f}%", help=f"{m['n_images']} held-out EuroSAT images; {m['mode']}",
            delta=None if m.get("previous_accuracy") is None else
            f"{100 * (m['accuracy'] - m['previous_accuracy']):+.2f} points (previous weights "
            f"{100 * m['previous_accuracy']:.2f}%)")
c[1].metric("Calibration error (ECE)", f"{m.get('ece_after', float('nan')):.3f}",
            help="15 bins, after temperature scaling" + ("" if m["ece_before"] != m["ece_before"]
                                                          else f" (before: {m['ece_before']:.3f})"))
c[2].metric("Architecture", f"{meta.architecture}", help=f"{meta.stem} stem, trained from scratch: "
                                                  + " + ".join(str(c.get("epochs")) for c in meta.training_cycles)
                                                  + f" epochs in {len(meta.training_cycles)} cycle(s)")
c[3].metric("Test-time augmentation", "cascade" if clf.tta else "off",
            help=("Patches whose top probability is under the shipped threshold are classified again in their 8 "
                  "flips and rotations and take the average" if clf.tta else "One view per patch"))

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
    st.caption(f"Per class and confusion: the test part classified "
               f"{'with all 8 flips and rotations' if report.get('mode') == 'tta' else 'plainly'} "
               f"(accuracy {100 * report.get('accuracy', float('nan')):.2f}%), as recorded at training; the accuracy "
               "above is the mode the app runs.")

st.subheader("Dense class maps (160 m cells)")
try:
    distil = get_dense_classifier().meta.training.get("distillation", {})
except Exception as exc:
    distil = {}
    show_error(exc)
held = distil.get("agreement_held_out", {})
try:
    refine = refine_entry(get_dense_classifier().sha256, get_classifier().sha256)
except Exception:  # noqa: BLE001 - the page shows the dense pass's figures instead
    refine = None
refine = refine if refine and "held_out" in refine else None
if held:
    d = st.columns(3)
    if refine:
        r = refine["held_out"]
        prev = (refine.get("previous_pair") or {}).get("held_out")  # the pair these replaced, same windows
        d[0].metric("Agreement with the per-window model", f"{100 * r['dense_plus_refine']['agreement']:.1f}%",
                    delta=(f"{100 * (r['dense_plus_refine']['agreement'] - prev['dense_plus_refine']['agreement']):+.1f} "
                           "points on the replaced weights") if prev else None,
                    help=f"Top-1 agreement on {r['dense_plus_refine']['windows']:,} windows of real scenes of areas "
                         f"never used in distillation ({', '.join(r['areas'])}), with the refine cascade "
                         f"(dense pass alone: {100 * r['dense_only']['agreement']:.1f}%"
                         + (f"; the replaced weights: {100 * prev['dense_plus_refine']['agreement']:.1f}% with the "
                            f"cascade, {100 * prev['dense_only']['agreement']:.1f}% alone" if prev else "") + ")")
        d[1].metric("Windows re-classified one by one", f"{100 * r['refined_share']:.1f}%",
                    delta=(f"{100 * (r['refined_share'] - prev['refined_share']):+.1f} points on the replaced weights"
                           if prev else None), delta_color="inverse",
                    help=f"Dense windows under top probability {refine['refine_below']:.2f}, classified again by the "
                         "per-window model")
    else:
        d[0].metric("Agreement with the per-window model", f"{100 * held['agreement']:.1f}%",
                    help=f"Top-1 agreement on {held['windows']:,} windows of real scenes of areas never used in "
                         f"distillation ({', '.join(distil.get('held_out_areas', []))})")
        d[1].metric("Mean probability difference", f"{held['mean_tv']:.3f}", help="Total-variation distance, 0..1")
    d[2].metric("Distillation steps", f"{distil.get('steps', 0):,}")
st.markdown("Class maps come from one fully convolutional pass of a copy of the ResNet over the whole scene, "
            "giving every 64x64 window at a 16 px step. A naive pass disagrees with the per-window model on about "
            "a third of the windows (zero padding at window borders matters), so the copy was fine-tuned to match "
            "the per-window model's probabilities on unlabelled real scenes (distillation), with a head that weighs "
            "each part of a window by its place in it. Windows the dense pass is unsure of (top probability under "
            "the shipped threshold) are classified again by the per-window model (refine cascade). Cell details "
            "always use the per-window model on the 64x64 window under the click.")

card = Path(__file__).resolve().parent.parent / "docs" / "MODEL_CARD.md"
if card.exists():
    with st.expander("Full model card", expanded=False):
        st.markdown(card.read_text())
