//! Reflective questions: posts a facilitator pins at the top of a community or event.
