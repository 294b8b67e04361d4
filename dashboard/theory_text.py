"""The Theory page's equations and their text: fixed strings, no user input (nothing here needs safe.py).

The conventions are the code's: timesteps t = 0..T−1 (the arrays' indices), the loss of a
last-step task reads h_{T−1}, cells as in rnn_core/cells.py, and Explore's dashed envelope as
dashboard.figures.linear_envelope computes it.
"""
from __future__ import annotations

import streamlit as st

CELL = r"h_k = \varphi(a_k), \qquad a_k = W_{ih}\,x_k + b_{ih} + W_{hh}\,h_{k-1} + b_{hh}"
JACOBIAN = r"\frac{\partial h_k}{\partial h_{k-1}} = \operatorname{diag}\big(\varphi'(a_k)\big)\,W_{hh} \;=:\; J_k"
PRODUCT = (r"\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_{T-1}}\prod_{k=T-1}^{t+1} J_k"
           r"= \frac{\partial L}{\partial h_{T-1}}\,J_{T-1}J_{T-2}\cdots J_{t+1}")
STEP_BOUND = (r"\Big\|\frac{\partial h_k}{\partial h_{k-1}}\Big\|_2 \le \|\operatorname{diag}(\varphi'(a_k))\|_2\,"
              r"\|W_{hh}\|_2 \le \gamma\,\sigma_{\max}(W_{hh}), \qquad \gamma = \max_a|\varphi'(a)|")
BOUND = (r"\Big\|\frac{\partial L}{\partial h_t}\Big\| \le \big(\gamma\,\sigma_{\max}\big)^{T-1-t}"
         r"\Big\|\frac{\partial L}{\partial h_{T-1}}\Big\|")
ENVELOPE = r"\rho^{\,T-1-t}\,\Big\|\frac{\partial L}{\partial h_{T-1}}\Big\|, \qquad \rho = \max_i|\lambda_i(W_{hh})| \le \sigma_{\max}"
LSTM = r"c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)"
LSTM_GRAD = (r"\frac{\partial L}{\partial c_{t-1}} = \frac{\partial L}{\partial c_t}\odot f_t"
             r" + \frac{\partial L}{\partial h_{t-1}}\odot o_{t-1}\odot\big(1-\tanh^2 c_{t-1}\big)")
ATTENTION = (r"\hat y = W_o\,[\,\textstyle\sum_s \alpha_s h_s;\ h_{T-1}\,], \qquad "
             r"\frac{\partial L}{\partial h_t} = \alpha_t\,\frac{\partial L}{\partial \mathrm{ctx}}"
             r" + (\text{terms through } \alpha) + \frac{\partial L}{\partial h_{t+1}}J_{t+1}")


def equations() -> None:
    st.markdown("**The chain of Jacobians.** The vanilla cell (rnn_core/cells.py) is")
    st.latex(CELL)
    st.markdown("so one step back in time multiplies the gradient (a row vector) by")
    st.latex(JACOBIAN)
    st.markdown("and, for a task whose loss reads only the last state $h_{T-1}$ (adding, temporal order, digits; "
                "timesteps t = 0 … T−1 as on every chart),")
    st.latex(PRODUCT)
    st.markdown("**The bound** (Pascanu, Mikolov & Bengio 2013). The 2-norm of a product is at most the product "
                "of the 2-norms, so")
    st.latex(STEP_BOUND)
    st.markdown("with γ = 1 for tanh (φ'(0) = 1), relu and linear, and γ = 1/4 for sigmoid; hence")
    st.latex(BOUND)
    st.markdown(
        "- **Vanishing** is *guaranteed* when γσ_max < 1: every step back shrinks the gradient by at least "
        "that factor. It is a sufficient condition: saturated units (φ' ≪ 1) make it vanish even when "
        "γσ_max > 1.\n"
        "- **Exploding** *needs* γσ_max > 1 (otherwise the bound forbids growth), but that alone does not make "
        "it happen.\n"
        "- Pascanu et al. call σ_max \"the largest eigenvalue\"; the proof uses the 2-norm, the largest "
        "singular value, which is at least the spectral radius ρ and equal to it only for a normal W_hh "
        "(symmetric, orthogonal).\n"
        "- The bound holds for each sequence, and so for the norm over the batch that the lab records. It "
        "needs every path from the loss to $h_t$ to go through $h_{T-1}$: one layer, no attention, a last-step "
        "task. With stacked layers, an every-step task (copy, sine, charlm) or attention, ∂L/∂h_t has direct "
        "terms outside the product.")
    st.markdown("**Explore's dashed envelope** (dashboard/figures.py, `linear_envelope`) is")
    st.latex(ENVELOPE)
    st.markdown(
        "anchored at the last finite timestep of the measured profile (for a backward direction at t = 0), "
        "where ρ is the spectral radius of W_hh recorded at the same step, before its update "
        "(rnn_core/diagnostics.py, `recurrent_spectra`); for an LSTM or GRU, ρ of the candidate block "
        "(g, or n). Its legend writes γ^(T−t), with T for the last timestep and γ for this ρ; on this page γ "
        "is max|φ'|. The envelope is the *exact* profile of a linear RNN whose W_hh = ρ·Q with Q orthogonal; "
        "for other matrices it is the asymptotic rate of a linear RNN, not a bound (a non-normal W_hh can "
        "grow for a while before it shrinks at rate ρ). The bound uses σ_max and γ instead.")
    st.markdown("**Why the LSTM escapes.** Its cell state is updated additively (rnn_core/cells.py):")
    st.latex(LSTM)
    st.latex(LSTM_GRAD)
    st.markdown(
        "The first term carries the gradient back through ∂c_t/∂c_{t−1} = diag(f_t), with no W_hh and no "
        "squashing derivative: with the forget gate near 1 (a forget bias of 1 starts it at σ(1) ≈ 0.73, "
        "a learnt gate goes higher) it decays like ∏ f_k, slowly, instead of like (γσ_max)^(T−1−t). The second "
        "term holds the indirect paths (through $h_{t-1}$ and the gates, each with its block of W_hh); they "
        "can vanish like a vanilla RNN's. Explore draws an LSTM's ‖∂L/∂c_t‖ dotted beside ‖∂L/∂h_t‖ in its "
        "latest profile. The GRU's "
        "$h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}$ gives the same kind of term, $\\operatorname{diag}(z_t)$.")
    st.markdown("**Why attention escapes.** With an attention readout the prediction reads every state:")
    st.latex(ATTENTION)
    st.markdown(
        "The first term reaches $h_t$ in one step, with no product of Jacobians, so ‖∂L/∂h_t‖ stays within a "
        "factor α_t of the readout's gradient however far back t is. It shortens the gradient's path; whether "
        "the net then uses that path is up to training.")
