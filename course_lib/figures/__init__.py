"""Explanatory diagrams for the lecture notebooks, drawn with matplotlib from computed values.

One module per lecture topic; import the one you need (nothing heavy is imported here):

- `course_lib.figures.convolution`: a window sliding over a padded input with a stride (static
  figure, and an ipywidgets slider when ipywidgets is installed); the receptive field growing
  over stacked layers.
- `course_lib.figures.graphs`: a computational graph with forward values and backward gradients.
- `course_lib.figures.normalization`: the axes batch / layer / instance / group norm average over.
- `course_lib.figures.architectures`: residual and inception blocks.

Every function returns a matplotlib Figure (or a widget) and picks no backend, so it runs headless
under MPLBACKEND=Agg as well as in Jupyter.
"""
