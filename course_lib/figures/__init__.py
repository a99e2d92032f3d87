"""Explanatory diagrams for the lecture notebooks, drawn with matplotlib from computed values.

One module per lecture topic; import the one you need (nothing heavy is imported here):

- `course_lib.figures.linear`: the linear classifier W x + b with an image stretched into x.
- `course_lib.figures.descent`: gradient descent on a parabola, converging or diverging.
- `course_lib.figures.activations`: the half-planes where ReLU units are active, and dead units.
- `course_lib.figures.convolution`: a window sliding over a padded input with a stride (static
  figure, and an ipywidgets slider when ipywidgets is installed); the receptive field growing
  over stacked layers.
- `course_lib.figures.graphs`: a computational graph with forward values and backward gradients.
- `course_lib.figures.normalization`: the axes batch / layer / instance / group norm average over.
- `course_lib.figures.architectures`: residual and inception blocks.

Every function returns a matplotlib Figure (or a widget) and picks no backend, so it runs headless
under MPLBACKEND=Agg as well as in Jupyter.
"""
