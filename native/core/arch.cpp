// plan_arch: validation of an architecture spec and the layout of its steps and parameters.
#include "tempered/arch.h"

#include <cmath>
#include <string>

namespace tempered {

namespace {

const char* kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::kConv:
      return "conv";
    case LayerKind::kRelu:
      return "relu";
    case LayerKind::kMaxPool:
      return "maxpool";
    case LayerKind::kDropout:
      return "dropout";
    case LayerKind::kFlatten:
      return "flatten";
    case LayerKind::kDense:
      return "dense";
  }
  return "?";
}

std::string shape_text(const Shape3& s) {
  if (s.h == 1 && s.w == 1) return std::to_string(s.c) + " features";
  return std::to_string(s.h) + "x" + std::to_string(s.w) + "x" + std::to_string(s.c);
}

}  // namespace

bool ArchPlan::same_as(const ArchPlan& o) const {
  if (spec.channels != o.spec.channels || spec.height != o.spec.height || spec.width != o.spec.width) return false;
  if (spec.layers.size() != o.spec.layers.size()) return false;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec &a = spec.layers[i], &b = o.spec.layers[i];
    if (a.kind != b.kind || a.kernel != b.kernel || a.filters != b.filters || a.same != b.same || a.rate != b.rate ||
        a.units != b.units)
      return false;
  }
  return true;
}

Status plan_arch(const ArchSpec& spec, ArchPlan* plan) {
  ArchPlan p;
  p.spec = spec;
  auto bad = [](const std::string& m) { return Status::BadArch(m); };
  if (spec.channels != 1 && spec.channels != 3)
    return bad("input: channels must be 1 or 3 (got " + std::to_string(spec.channels) + ")");
  if (spec.height < 1 || spec.height > kArchMaxSide || spec.width < 1 || spec.width > kArchMaxSide)
    return bad("input: height and width must be in 1.." + std::to_string(kArchMaxSide) + " (got " +
               std::to_string(spec.height) + "x" + std::to_string(spec.width) + ")");
  if (spec.layers.empty()) return bad("the spec has no layers");
  if (static_cast<int>(spec.layers.size()) > kArchMaxLayers)
    return bad("the spec has " + std::to_string(spec.layers.size()) + " layers (at most " +
               std::to_string(kArchMaxLayers) + ")");
  p.input = {spec.height, spec.width, spec.channels};

  Shape3 cur = p.input;
  bool flat = false;
  int convs = 0, denses = 0, pools = 0;
  double total = 0;
  auto add_param = [&](const std::string& name, std::vector<int> dims, int fan_in, int fan_out) {
    ParamSpec ps;
    ps.name = name;
    ps.size = 1;
    for (int d : dims) ps.size *= static_cast<size_t>(d);
    ps.dims = std::move(dims);
    ps.offset = p.total_params;
    ps.fan_in = fan_in;
    ps.fan_out = fan_out;
    p.total_params += ps.size;
    p.params.push_back(std::move(ps));
    return static_cast<int>(p.params.size()) - 1;
  };
  auto note_activation = [&](const Shape3& s) { p.largest_activation = std::max(p.largest_activation, s.size()); };
  note_activation(cur);

  for (size_t li = 0; li < spec.layers.size(); ++li) {
    const LayerSpec& l = spec.layers[li];
    const std::string where = "layer " + std::to_string(li) + " (" + kind_name(l.kind) + "): ";
    const bool last = li + 1 == spec.layers.size();
    Step st;
    st.layer = static_cast<int>(li);
    st.in = cur;
    switch (l.kind) {
      case LayerKind::kConv: {
        if (flat) return bad(where + "a convolution cannot follow flatten or dense");
        if (l.kernel == 5) return bad(where + "kernel 5 is not supported by this version of the engine (only 3)");
        if (l.kernel != 3) return bad(where + "kernel must be 3 (got " + std::to_string(l.kernel) + ")");
        if (l.filters < 1 || l.filters > kArchMaxFilters)
          return bad(where + "filters must be in 1.." + std::to_string(kArchMaxFilters) + " (got " +
                     std::to_string(l.filters) + ")");
        const int pad = l.same ? (l.kernel - 1) / 2 : 0;
        if (pad > 0) {
          Step ps = st;
          ps.kind = StepKind::kPad;
          ps.pad = pad;
          ps.out = {cur.h + 2 * pad, cur.w + 2 * pad, cur.c};
          ps.name = "pad" + std::to_string(convs + 1);
          note_activation(ps.out);
          cur = ps.out;
          p.steps.push_back(ps);
          st.in = cur;
        }
        if (cur.h < l.kernel || cur.w < l.kernel)
          return bad(where + "a " + std::to_string(l.kernel) + "x" + std::to_string(l.kernel) +
                     " convolution does not fit its " + shape_text(cur) + " input");
        ++convs;
        st.kind = StepKind::kConv;
        st.kernel = l.kernel;
        st.out = {cur.h - l.kernel + 1, cur.w - l.kernel + 1, l.filters};
        st.name = "conv" + std::to_string(convs);
        const int taps = l.kernel * l.kernel;
        total += static_cast<double>(l.filters) * cur.c * taps + l.filters;
        if (total > kArchMaxParams) return bad(where + "the network has more than 1e8 parameters");
        st.weight =
            add_param(st.name + ".weight", {l.filters, cur.c, l.kernel, l.kernel}, cur.c * taps, l.filters * taps);
        st.bias = add_param(st.name + ".bias", {l.filters}, 0, 0);
        break;
      }
      case LayerKind::kRelu:
        if (!p.steps.empty() && !p.steps.back().relu &&
            (p.steps.back().kind == StepKind::kConv || p.steps.back().kind == StepKind::kDense)) {
          p.steps.back().relu = true;  // fused
          continue;
        }
        st.kind = StepKind::kRelu;
        st.out = cur;
        st.name = "relu" + std::to_string(li);
        break;
      case LayerKind::kMaxPool:
        if (flat) return bad(where + "max pooling cannot follow flatten or dense");
        if (cur.h % 2 != 0 || cur.w % 2 != 0)
          return bad(where + "2x2 max pooling needs an even height and width (its input is " + shape_text(cur) + ")");
        ++pools;
        st.kind = StepKind::kMaxPool;
        st.out = {cur.h / 2, cur.w / 2, cur.c};
        st.name = "pool" + std::to_string(pools);
        break;
      case LayerKind::kDropout:
        if (!(l.rate >= 0.0f && l.rate < 1.0f))
          return bad(where + "rate must be in [0, 1) (got " + std::to_string(l.rate) + ")");
        st.kind = StepKind::kDropout;
        st.rate = l.rate;
        st.dropout_id = static_cast<uint32_t>(p.dropout_layers++);
        st.out = cur;
        st.name = "dropout" + std::to_string(st.dropout_id + 1);
        break;
      case LayerKind::kFlatten:
        if (flat) return bad(where + "the spec flattens twice");
        flat = true;
        st.kind = StepKind::kFlatten;
        st.out = {1, 1, static_cast<int>(cur.size())};
        st.name = "flat";
        break;
      case LayerKind::kDense: {
        if (!flat) return bad(where + "a dense layer needs a flatten before it (its input is " + shape_text(cur) + ")");
        if (l.units < 1 || l.units > kArchMaxUnits)
          return bad(where + "units must be in 1.." + std::to_string(kArchMaxUnits) + " (got " +
                     std::to_string(l.units) + ")");
        ++denses;
        st.kind = StepKind::kDense;
        st.out = {1, 1, l.units};
        st.name = "fc" + std::to_string(denses);
        total += static_cast<double>(l.units) * cur.c + l.units;
        if (total > kArchMaxParams) return bad(where + "the network has more than 1e8 parameters");
        st.weight = add_param(st.name + ".weight", {l.units, cur.c}, cur.c, l.units);
        st.bias = add_param(st.name + ".bias", {l.units}, 0, 0);
        break;
      }
      default:
        return bad(where + "unknown layer kind");
    }
    if (static_cast<double>(st.out.size()) > kArchMaxActivation)
      return bad(where + "its output (" + shape_text(st.out) + ") is larger than 2^24 values per sample");
    if (st.out.h < 1 || st.out.w < 1 || st.out.c < 1) return bad(where + "its output is empty");
    note_activation(st.out);
    cur = st.out;
    if (last && l.kind != LayerKind::kDense)
      return bad(where + "the last layer must be dense: its units are the classes");
    p.steps.push_back(st);
  }
  const Step& tail = p.steps.back();
  if (tail.kind != StepKind::kDense || tail.relu)
    return bad("layer " + std::to_string(spec.layers.size() - 1) +
               ": the last layer must be a dense layer without ReLU");
  p.classes = tail.out.c;
  if (p.classes < kArchMinClasses || p.classes > kArchMaxClasses)
    return bad("layer " + std::to_string(tail.layer) +
               " (dense): the last dense layer gives the classes, which must be " + std::to_string(kArchMinClasses) +
               ".." + std::to_string(kArchMaxClasses) + " (got " + std::to_string(p.classes) + ")");
  p.steps.back().name = "logits";
  *plan = std::move(p);
  return Status::Ok();
}

ArchSpec paper_mnist_spec() {
  ArchSpec s;
  s.channels = 1;
  s.height = s.width = 28;
  auto conv = [](int filters) {
    LayerSpec l;
    l.kind = LayerKind::kConv;
    l.kernel = 3;
    l.filters = filters;
    return l;
  };
  auto of = [](LayerKind k) {
    LayerSpec l;
    l.kind = k;
    return l;
  };
  auto dense = [](int units) {
    LayerSpec l;
    l.kind = LayerKind::kDense;
    l.units = units;
    return l;
  };
  auto dropout = [](float rate) {
    LayerSpec l;
    l.kind = LayerKind::kDropout;
    l.rate = rate;
    return l;
  };
  const LayerKind relu = LayerKind::kRelu;
  s.layers = {conv(32),
              of(relu),
              conv(32),
              of(relu),
              of(LayerKind::kMaxPool),
              conv(64),
              of(relu),
              conv(64),
              of(relu),
              of(LayerKind::kMaxPool),
              of(LayerKind::kFlatten),
              dropout(0.5f),
              dense(200),
              of(relu),
              dropout(0.5f),
              dense(200),
              of(relu),
              dropout(0.5f),
              dense(10)};
  return s;
}

}  // namespace tempered
